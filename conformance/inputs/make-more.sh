#!/usr/bin/env bash
# Makes two more speech fixtures with espeak-ng, festival and sox (apt: espeak-ng sox festival;
# festival brings its default English voice, kal_diphone, used through text2wave):
#   short-utterances.flac/.txt/.tsv: 40 short phrases (1 to 2 s of speech each, 3 to 6 words)
#     in varied voices and speeds, each followed by 1.5 s of silence, under white noise that
#     rises by thirds. Short speech in a mostly silent window is what sets Whisper looping
#     (repeating a phrase, or inventing one in the silence), so these exercise the decoder's
#     trimmed-window guard. The .tsv has a line per phrase, index (from 1), start and end
#     seconds of its speech in the file, voice, speed and text, tab-separated.
#   reading.flac/.txt: about 2.5 minutes of read prose (the opening of Jane Austen's "Sense and
#     Sensibility", chapter 1, public domain), one utterance per sentence or clause, alternating
#     two voices: a multi-sentence benchmark input.
# The audio is 16 kHz mono 16-bit FLAC; each .txt has one line per utterance, the words spoken.
# The outputs are committed; rerun this only to change them, then update the tests'
# expectations. As in make.sh, a file that exists is kept, and
# `STENO_REGENERATE=1 ./make-more.sh` rewrites every file. Every step is deterministic (the
# synthesisers are; -R seeds sox's noise generator and -D turns dither off), so a rerun gives the
# same samples, and a missing .txt or .tsv can be rewritten alone and still match its audio.
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Whether to write output file $1: when it is missing, or when everything is regenerated.
want() { [[ ${STENO_REGENERATE:-} == 1 || ! -e $1 ]]; }

# shellcheck source=synth.sh
source ./synth.sh

# as_written TEXT: TEXT with its numbers in digits, the way Whisper writes them.
as_written() {
  sed -e 's/twelve dollars/12 dollars/; s/ten minutes/10 minutes/; s/four hundred and six/406/' \
    -e 's/Three, two, one/3, 2, 1/; s/fifteen minutes/15 minutes/; s/two forty/240/' \
    -e 's/Ninety nine percent/99%/' <<< "$1"
}

# --- short-utterances -------------------------------------------------------------------------
# voice|speed|text. About a third (every third phrase) is festival; the rest go round the
# espeak-ng voices en-us, en-gb, en-us+f3 (female variant), en-us+m3 and en-gb-x-rp at 130 to
# 200 wpm. Numbers are spoken as words; the .txt writes them in digits, as Whisper does, so
# WER counts misheard words rather than spelling (see as_written).
phrases=(
  "en-us|150|Turn left at the corner."
  "en-gb|150|Call me tomorrow morning."
  "festival|1.0|Yes, that works for me."
  "en-us+f3|130|Seven thirty tonight."
  "en-us+m3|170|Send the report to Anna."
  "festival|1.1|Where did you put it?"
  "en-gb-x-rp|160|Not right now, sorry."
  "en-us|190|Is Maria coming to dinner tonight?"
  "festival|1.0|Thanks a lot, David."
  "en-gb|140|It costs twelve dollars."
  "en-us+f3|175|Open the door, please."
  "festival|1.1|What time is it there?"
  "en-us+m3|155|I'll be there in ten minutes."
  "en-gb-x-rp|180|Room four hundred and six."
  "festival|1.15|Good morning, Sarah."
  "en-us|135|Stop the car here."
  "en-gb|140|Can you hear me now?"
  "festival|1.1|Maybe sometime next week."
  "en-us+f3|195|Three, two, one, go."
  "en-us+m3|175|Please sit down over there."
  "festival|1.2|Who called this morning?"
  "en-gb-x-rp|140|Meet me at noon tomorrow."
  "en-us|180|That's far too expensive."
  "festival|1.2|Happy birthday, Tom."
  "en-gb|130|Is it still raining outside?"
  "en-us+f3|160|Only fifteen minutes left."
  "festival|0.9|No, thank you, I'm fine."
  "en-us+m3|150|Bring the blue one, please."
  "en-gb-x-rp|130|Why not ask Peter?"
  "festival|0.95|Flight two forty is boarding."
  "en-us|165|Lock the back door tonight."
  "en-gb|170|See you on Friday night."
  "festival|1.0|How much does it cost?"
  "en-us+f3|150|Ask James about it first."
  "en-us+m3|140|The train is late again."
  "festival|1.0|Ninety nine percent sure."
  "en-gb-x-rp|175|That sounds good to me."
  "en-us|145|Where did Emma go today?"
  "festival|1.15|Keep it quiet, please."
  "en-gb|200|Goodbye for now, everyone."
)

if want short-utterances.flac || want short-utterances.txt || want short-utterances.tsv; then
  # The phrase of line I of `phrases`, for phrases_in_noise (synth.sh).
  phrase() {
    IFS='|' read -r voice speed text <<< "${phrases[$1]}"
    label=$voice
    if [[ $voice == festival ]]; then label=festival/kal_diphone; fi
    written=$(as_written "$text")
  }
  phrases_in_noise "${#phrases[@]}" short-utterances
  if want short-utterances.flac; then to_flac "$work/short.wav" short-utterances.flac; fi
  if want short-utterances.txt; then cp "$work/short.txt" short-utterances.txt; fi
  if want short-utterances.tsv; then cp "$work/short.tsv" short-utterances.tsv; fi
fi

# --- reading ----------------------------------------------------------------------------------
# The opening of "Sense and Sensibility", chapter 1, in order, with the will and its aftermath
# (paragraphs 3 to 6) left out to keep it near 2.5 minutes; long sentences are split at natural
# points so each utterance is 3 to 10 s (and "His attachment to them all increased.", too short
# alone, kept with the sentence before it). Odd lines are espeak-ng en-us at 160 wpm, even lines
# festival at its natural pace.
reading=(
  "The family of Dashwood had long been settled in Sussex."
  "Their estate was large, and their residence was at Norland Park, in the centre of their property,"
  "where, for many generations, they had lived in so respectable a manner as to engage the general good opinion of their surrounding acquaintance."
  "The late owner of this estate was a single man, who lived to a very advanced age,"
  "and who for many years of his life, had a constant companion and housekeeper in his sister."
  "But her death, which happened ten years before his own, produced a great alteration in his home;"
  "for to supply her loss, he invited and received into his house the family of his nephew Mr. Henry Dashwood,"
  "the legal inheritor of the Norland estate, and the person to whom he intended to bequeath it."
  "In the society of his nephew and niece, and their children, the old gentleman's days were comfortably spent. His attachment to them all increased."
  "The constant attention of Mr. and Mrs. Henry Dashwood to his wishes,"
  "which proceeded not merely from interest, but from goodness of heart,"
  "gave him every degree of solid comfort which his age could receive;"
  "and the cheerfulness of the children added a relish to his existence."
  "By a former marriage, Mr. Henry Dashwood had one son: by his present lady, three daughters."
  "The son, a steady respectable young man, was amply provided for by the fortune of his mother,"
  "which had been large, and half of which devolved on him on his coming of age."
  "By his own marriage, likewise, which happened soon afterwards, he added to his wealth."
  "To him therefore the succession to the Norland estate was not so really important as to his sisters;"
  "for their fortune, independent of what might arise to them from their father's inheriting that property, could be but small."
  "Their mother had nothing, and their father only seven thousand pounds in his own disposal;"
  "for the remaining moiety of his first wife's fortune was also secured to her child, and he had only a life-interest in it."
  "Mr. John Dashwood had not the strong feelings of the rest of the family;"
  "but he was affected by a recommendation of such a nature at such a time,"
  "and he promised to do every thing in his power to make them comfortable."
  "He was not an ill-disposed young man, unless to be rather cold hearted and rather selfish is to be ill-disposed."
)

if want reading.flac || want reading.txt; then
  quiet "$work/lead.wav" 0.6
  quiet "$work/gap.wav" 0.9
  pieces=("$work/lead.wav")
  for i in "${!reading[@]}"; do
    if ((i % 2 == 0)); then
      speak en-us 160 "${reading[$i]}" "$work/r$i.wav"
    else
      speak festival 1.0 "${reading[$i]}" "$work/r$i.wav"
    fi
    pieces+=("$work/r$i.wav" "$work/gap.wav")
  done
  sox -R -D "${pieces[@]}" "${fmt[@]}" "$work/reading-clean.wav"
  # Low white noise under the whole reading (about -49 dBFS RMS), so silence is never digital.
  with_noise "$work/reading-clean.wav" 0.006 "$work/reading.wav"
  if want reading.flac; then to_flac "$work/reading.wav" reading.flac; fi
  if want reading.txt; then printf '%s\n' "${reading[@]}" > reading.txt; fi
fi
