#!/usr/bin/env bash
# Makes short-many.flac/.txt/.tsv in OUTDIR (default: target/bench-inputs at the workspace
# root): 200 short phrases (0.8 to 2.4 s of speech, 3 to 7 words), each followed by 1.5 s of
# silence, under white noise at the three levels of short-utterances.flac (a third each). It
# is short-utterances.flac five times over, in more voices, so that a difference of a point
# of WER between two ways of decoding short phrases is ten words, not two: what Whisper's
# window recipe is chosen on (BENCHMARKS.md, "Whisper's window sized to the utterance").
# About 11 minutes of audio (~10 MB as FLAC), so it is made where benchmarks need it, not
# committed; every step is deterministic, as in make-more.sh, so every run makes the same
# samples.
#
# Voices, in turn: espeak-ng en-us, en-gb, en-us+f3, en-gb-scotland, en-gb-x-rp+m3 and en-029
# at 130 to 190 words a minute; festival's kal_diphone and ked_diphone (Duration_Stretch 0.9
# to 1.2) and cmu_us_slt_arctic_hts, an HTS voice, the most natural of them (its own pace).
# apt: espeak-ng sox festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$root/target/bench-inputs}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# shellcheck source=synth.sh
source "$here/synth.sh"

voices=(en-us festival/kal_diphone en-gb festival/cmu_us_slt_arctic_hts en-us+f3
  festival/ked_diphone en-gb-scotland en-gb-x-rp+m3 festival/kal_diphone en-029)
espeak_speeds=(130 145 160 175 190)
festival_stretches=(0.9 1.0 1.1 1.2)

phrases=()
while IFS= read -r line; do phrases+=("$line"); done <<'EOF'
Pick up some milk on the way.
The meeting starts at noon.
Could you close the window?
I think it's going to rain.
Let's grab lunch together.
She already left the office.
Please turn the music down.
We need more coffee.
Where are my keys?
That was a great movie.
He forgot his umbrella again.
Send me the address.
The printer is out of paper.
I'll call you back later.
Don't forget your jacket.
Is the store still open?
The kids are asleep upstairs.
Can we talk about this tomorrow?
My phone battery is dead.
The soup is too salty.
Let me check my calendar.
Wait for me outside.
The bus was very crowded.
I love this song.
Put the box on the table.
Who wants another slice?
The garden needs watering.
We missed the last train.
Read the first chapter tonight.
Your package arrived this morning.
Take the second exit.
I can't find the remote.
The dog needs a walk.
Save the file before closing.
It's colder than yesterday.
Let's meet by the fountain.
The water is boiling.
He plays the piano beautifully.
Leave the lights on, please.
The river is very high.
Check the oven in an hour.
She speaks three languages.
Bring your own lunch.
The window seat is taken.
I have a headache.
Turn off the television.
We should leave early.
The bread is still warm.
Add sugar to the list.
My sister lives in Boston.
The flowers smell lovely.
Sign here, please.
I'm running a little late.
Open a new document.
The baby is finally asleep.
Dinner is almost ready.
The car won't start.
Mark this email as read.
He lost his wallet yesterday.
We painted the kitchen blue.
Hold the elevator, please.
It's a beautiful morning.
Answer the phone, please.
The concert was sold out.
Lower the volume a bit.
She bought a new bicycle.
I'll have the chicken salad.
The road is closed ahead.
Can you spell your name?
Set an alarm for seven.
The cat is on the roof.
We are out of eggs.
Tell Michael I said hello.
Move the meeting to Friday.
The tea is getting cold.
He writes with his left hand.
Let's go for a swim.
The shop closes early today.
Write that down for me.
I need a new password.
The plants need more light.
Nobody answered the door.
The hotel was very quiet.
Fold the towels, please.
My brother fixed the sink.
Keep the change.
We watched the sunset together.
The library is around the corner.
Close all the windows.
It smells like smoke.
Let's try again tomorrow.
The baby started crying.
Her train arrives at six.
Pass me the salt, please.
The screen is too bright.
I left my bag at home.
The wind knocked over the fence.
Play some relaxing music.
We need to buy a gift.
The snow is melting fast.
Can I borrow your pen?
The cake needs more time.
Our flight was delayed.
Call the doctor's office.
The neighbors are very friendly.
Start the timer now.
I'd like a glass of water.
He never drinks coffee.
The museum opens at ten.
Clean your room, please.
The shirt is too small.
We should plant some trees.
Where is the nearest pharmacy?
Karen is coming over later.
The internet is down again.
Turn right after the bridge.
Let's order a pizza.
I finished the whole book.
The painting looks wonderful.
Lock your bike outside.
The lake was frozen solid.
Who left the door open?
Grab a chair and sit down.
The show starts in five minutes.
Please repeat the question.
The soup smells delicious.
I'm allergic to peanuts.
Put on your seatbelt.
The office is on the third floor.
They moved to a bigger house.
Don't touch the stove.
Send a reminder to everyone.
The coffee machine is broken.
My shoes are soaking wet.
Let's take a short break.
The horse ran across the field.
Empty the dishwasher, please.
Robert won the chess game.
The train leaves in an hour.
Shut down the computer.
Her garden is full of roses.
Is there any more tea?
The store is out of bread.
We need a bigger table.
I'll drive you to the airport.
The door is stuck again.
Water the plants on Sunday.
The baby has a fever.
Lisa bought fresh strawberries.
The kettle just switched off.
Let's walk along the beach.
My computer is very slow.
He cut his finger cooking.
Please wipe your feet.
The mail came early today.
Our team won the match.
Give the dog a bath.
Turn the heating up.
It's too noisy in here.
The map is in the car.
She painted a lovely picture.
I'll see you next month.
The fridge is making noises.
Remember to feed the fish.
The apples are very sweet.
He fell asleep on the couch.
Book a table for two.
My coat is in the closet.
Clear the table, please.
The sun is really strong.
The bridge is under repair.
Let's watch a film tonight.
Buy some fresh vegetables.
Nobody knows the answer.
The candle burned out.
I'm waiting for a taxi.
The bakery smells amazing.
Steven lost the car keys.
We booked a cabin by the lake.
Unplug the toaster, please.
The children love the park.
Bring an extra blanket.
That's the wrong number.
The paint is still wet.
Take your medicine after dinner.
The bell rang twice.
Charge your phone tonight.
The test was really hard.
Put the milk in the fridge.
My neighbor has a big dog.
The room is very warm.
Let's ask for directions.
Print two copies, please.
The fish tastes strange.
He plays football on Saturdays.
The ice cream is melting.
Thomas broke his glasses.
Let's keep this between us.
Switch off the fan, please.
The line was very long.
EOF

# Phrase I in its voice and speed (the voices in turn, each voice's speeds in turn), for
# phrases_in_noise (synth.sh).
phrase() {
  voice=${voices[$1 % ${#voices[@]}]}
  local round=$(($1 / ${#voices[@]}))
  if [[ $voice == festival/* ]]; then
    speed=${festival_stretches[round % ${#festival_stretches[@]}]}
  else
    speed=${espeak_speeds[round % ${#espeak_speeds[@]}]}
  fi
  text=${phrases[$1]} label=$voice written=${phrases[$1]}
}
n=${#phrases[@]}
phrases_in_noise "$n" short-many
to_flac "$work/short.wav" "$out/short-many.flac"
cp "$work/short.txt" "$out/short-many.txt"
cp "$work/short.tsv" "$out/short-many.tsv"
echo "made $out/short-many.flac ($n phrases, $(soxi -d "$out/short-many.flac"))"
