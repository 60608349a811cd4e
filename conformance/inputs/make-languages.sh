#!/usr/bin/env bash
# Makes the language fixtures with espeak-ng and sox (apt: espeak-ng sox), 16 kHz mono 16-bit
# FLAC with the session's low white noise under the speech:
#   languages-de.flac, languages-fr.flac, languages-es.flac: three sentences in German, French
#     and Spanish, one voice each, 0.9 s apart;
#   languages-mixed.flac: one sentence in each of German, French, Spanish and English, in that
#     order, 1.2 s apart (a different language in every utterance);
#   languages.tsv: one line per sentence of every file: file, language code, the words, and
#     their English translation.
# The outputs are committed; as in make.sh a file that exists is kept, and
# `STENO_REGENERATE=1 ./make-languages.sh` rewrites every file. Every step is deterministic.
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
want() { [[ ${STENO_REGENERATE:-} == 1 || ! -e $1 ]]; }
fmt=(-r 16000 -c 1 -b 16)
rows=()
n=0

# say OUT VOICE CODE GAP TEXT ENGLISH: TEXT spoken by VOICE, then GAP seconds of silence,
# appended to the list of pieces of OUT.
declare -A pieces
say() {
  local out=$1 voice=$2 code=$3 gap=$4 text=$5 english=$6
  n=$((n + 1))
  espeak-ng -v "$voice" -s 145 -w "$work/raw$n.wav" "$text"
  sox -D "$work/raw$n.wav" "${fmt[@]}" "$work/cut$n.wav" silence 1 0.01 0.5% reverse \
    silence 1 0.01 0.5% reverse pad 0 "$gap"
  pieces[$out]+="$work/cut$n.wav "
  rows+=("$(printf '%s\t%s\t%s\t%s' "$out" "$code" "$text" "$english")")
}

say languages-de.flac de de 0.9 "Das Wetter ist heute sehr schön." "The weather is very nice today."
say languages-de.flac de de 0.9 "Wir fahren morgen mit dem Zug nach Berlin." \
  "We are going to Berlin by train tomorrow."
say languages-de.flac de de 0.9 "Kannst du mir bitte das Wasser geben?" \
  "Can you please give me the water?"
say languages-fr.flac fr-fr fr 0.9 "Le chat dort sur la chaise." "The cat is sleeping on the chair."
say languages-fr.flac fr-fr fr 0.9 "Nous allons au marché tous les samedis." \
  "We go to the market every Saturday."
say languages-fr.flac fr-fr fr 0.9 "Il fait très froid ce matin." "It is very cold this morning."
say languages-es.flac es es 0.9 "Mi hermano vive en una casa grande." "My brother lives in a big house."
say languages-es.flac es es 0.9 "El tren sale a las ocho de la mañana." \
  "The train leaves at eight in the morning."
say languages-es.flac es es 0.9 "Me gusta mucho leer libros." "I really like reading books."
say languages-mixed.flac de de 1.2 "Guten Morgen, wie geht es dir heute?" \
  "Good morning, how are you today?"
say languages-mixed.flac fr-fr fr 1.2 "Je voudrais un café, s'il vous plaît." \
  "I would like a coffee, please."
say languages-mixed.flac es es 1.2 "La biblioteca está cerrada los domingos." \
  "The library is closed on Sundays."
say languages-mixed.flac en-us en 1.2 "Thank you all for coming to the meeting." \
  "Thank you all for coming to the meeting."

for out in languages-de.flac languages-fr.flac languages-es.flac languages-mixed.flac; do
  if want "$out"; then
    # shellcheck disable=SC2086 # the pieces are one word each
    sox -D ${pieces[$out]} "${fmt[@]}" "$work/speech.wav" pad 0.6 0
    seconds=$(soxi -D "$work/speech.wav")
    sox -D -R -n "${fmt[@]}" "$work/noise.wav" synth "$seconds" whitenoise vol 0.006
    sox -D -m -v 1 "$work/speech.wav" -v 1 "$work/noise.wav" "${fmt[@]}" "$out"
  fi
done
if want languages.tsv; then
  printf '%s\n' "${rows[@]}" > languages.tsv
fi
