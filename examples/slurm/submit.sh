#!/bin/bash
# Submit the whole chain: encode (array) -> gather (afterany) -> statistics (array, afterok) -> pool and
# generate (afterok). Run it from the folder the jobs should work in; any arguments go to every sbatch
# (e.g. --partition=gpu, or --cpus-per-task=1 --mem=1G on a small test cluster).
#
#   MODEL=/data/model.ts INPUT=/data/audio examples/slurm/submit.sh
#
# The gather step exits 1 when any file failed, so the statistics wait for a clean encode. To go on with
# the files that did encode, submit stats.sbatch yourself with --dependency=afterany:<encode id>.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export RAVEKIT=${RAVEKIT:-$(cd "$HERE/../.." && pwd)}

id() { echo "${1%%;*}"; }  # sbatch --parsable prints "id" or "id;cluster"
encode=$(id "$(sbatch --parsable "$@" "$HERE/encode.sbatch")")
gather=$(id "$(sbatch --parsable "$@" --dependency=afterany:"$encode" "$HERE/gather.sbatch")")
stats=$(id "$(sbatch --parsable "$@" --dependency=afterok:"$gather" "$HERE/stats.sbatch")")
pool=$(id "$(sbatch --parsable "$@" --dependency=afterok:"$stats" "$HERE/pool.sbatch")")
echo "encode $encode, gather $gather, stats $stats, pool $pool"
