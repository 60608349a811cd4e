// worklet
