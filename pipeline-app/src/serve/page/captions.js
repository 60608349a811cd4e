// captions
