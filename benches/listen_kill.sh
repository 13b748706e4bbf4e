#!/usr/bin/env bash
# Trials (issue 15): rx-listen killed (SIGKILL) at a random moment while
# four senders (our raw SCU, so that we know which instances were
# acknowledged) push SAG-anon's 192 instances; then restarted on the same
# dirs, and the senders send the whole series again. Each trial checks that
# every instance acknowledged before the kill is at its final name, whole,
# with its image record, that nothing partial is at a final name, and that
# the resend completes the series (192 placed, all records, StudyList).
# Series events are on (--events-ndjson): one trial in three is killed
# around the series' completion instead, and after the restart every
# event due at the kill (in the outbox, or announced) and the whole
# series' is delivered, the same id for the same count, the outbox empty.
# It is the test listen_faults::kill_9_while_senders_push_loses_nothing_acknowledged,
# which CI runs with 5 trials, run with more.
#
#   benches/listen_kill.sh                 # 30 trials
#   KILL_TRIALS=100 KILL_SEED=42 benches/listen_kill.sh
#
# Needs the example data (./get_examples.sh examples-data) and root (none
# here, but the test binary holds the mounting tests too). Exit status: 0
# when every trial passed.
set -euo pipefail
cd "$(dirname "$0")/.."

export RX_LISTEN_KILL_TRIALS=${KILL_TRIALS:-30}
[ -n "${KILL_SEED:-}" ] && export RX_LISTEN_KILL_SEED=$KILL_SEED
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --release --test it -- --exact \
  listen_faults::kill_9_while_senders_push_loses_nothing_acknowledged --nocapture >"$log" 2>&1 || status=$?
grep '^listen_kill: ' "$log" || true
if [ "$status" -ne 0 ]; then
  grep -v '^rx-listen: ' "$log" | tail -40 >&2
fi
exit "$status"
