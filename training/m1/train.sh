#!/usr/bin/env bash
# The generated-pair training run "m1" (docs/experiments.md, 2026-12-08), reproducible from a clone
# beside ../shared. Continue the committed weights on another machine:
#   FROM=training/m1 bash training/m1/train.sh WORK --time-limit 7200   (a new run from these weights)
#   bash training/m1/train.sh WORK --resume --time-limit 7200           (the same run, from WORK/m1/checkpoint)
# WORK: a directory for the validation series and the model (WORK/m1, its best weights WORK/m1/best).
# FROM: the weights to start from (default the bundled cine-mr, as the committed run did).
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=${1:?usage: train.sh WORK [more train options]}
shift
S=../shared/data
R="node bin/r2n2.js"
mkdir -p "$WORK/val"
# validation: series simulated from scouts of tune patients (bench/split.json), TRE at their landmarks
i=0
for p in SCD0001601 SCD0002201 SCD0003701 SCD0004501; do
  i=$((i + 1))
  m=breathing a=12
  [ $i = 2 ] && m=cardiac a=6
  [ $i = 4 ] && m=random a=8
  f=$(ls "$S/sunnybrook-scouts/$p"/*.dcm | sed -n 5p)
  [ -d "$WORK/val/$p-$m" ] || $R simulate "$f" --out "$WORK/val/$p-$m" --motion $m --amplitude $a --frames 12 --seed $i --quiet >/dev/null
done
TRAIN=$(node -e "console.log(require('./bench/split.json').train.map((p) => '$S/sunnybrook-scouts/' + p).join(' '))")
SERIES=$(ls -d $S/sunnybrook/series/SCD0000{1,2}01/slice_*/frames)
# shellcheck disable=SC2086
exec $R train $SERIES \
  --stills $TRAIN $S/itk-examples $S/birl_artificial/artificial_reference.jpg \
  --synth 1 --stills-weight 2 --series-weight 1 \
  --val "$WORK"/val/*/frames $S/sunnybrook/series/SCD0000301/slice_03/frames $S/sunnybrook/series/SCD0000301/slice_06/frames \
  --val-pairs 4 --from "${FROM:-cine-mr}" --input-block 2 --steps 14 --batch 4 \
  --lr 1e-4 --lr-final 1e-5 --iterations 20000 --checkpoint-every 250 --keep 1 --lambda 0.1 --seed 7 \
  --out "$WORK/m1" --log-level info "$@"
