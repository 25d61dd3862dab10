# Shared by the recipes (scripts/emoji.sh, scripts/fmnist.sh): the maskgen command, the backend flags
# from BACKEND / THREADS, and `stage NAME CMD…`, which runs a stage and appends its wall time to $TIMES.
M="node bin/maskgen.js"
B="--backend ${BACKEND:-auto} ${THREADS:+--threads $THREADS}"
mkdir -p runs
stage() {
  local name=$1
  shift
  local t0=$SECONDS
  "$@"
  echo "$name $((SECONDS - t0))s" | tee -a "$TIMES"
}
