#!/bin/sh
# The chaos run's plan (chaos/run.ts): prints its params (the secret `token` among them, which the
# runner must mask), a few numbered lines and a phase marker, sleeps a little, fails when asked, and
# leaves the marker check.sh reads (absent after a teardown). Params: {sleep, lines, fail, token,
# stubborn}. A stubborn attempt leaves in its group a child that ignores SIGTERM (named after the
# attempt, so the run can find it in /proc) and waits for it: it ends only by cancel, timeout or kill,
# and the watcher must stop that child before it records the end.
p=$LIFELINE_PARAMS
echo "chaos $LIFELINE_KIND $LIFELINE_DEPLOYMENT_NAME attempt $LIFELINE_ATTEMPT_NUMBER params $p"
case $p in
  *'"stubborn":true'*)
    bash -c 'trap "" TERM; exec -a "$0" sleep 3600' "lifeline-chaos-stubborn-$LIFELINE_ATTEMPT_ID" &
    wait
    ;;
esac
secs=$(printf '%s' "$p" | sed -n 's/.*"sleep":\([0-9.]*\).*/\1/p')
lines=$(printf '%s' "$p" | sed -n 's/.*"lines":\([0-9]*\).*/\1/p')
i=0
while [ "$i" -lt "${lines:-3}" ]; do
  echo "line $i of $LIFELINE_DEPLOYMENT_NAME"
  i=$((i + 1))
done
printf '{"phase":"work"}\n' >>"$LIFELINE_EVENTS_FILE"
sleep "${secs:-0.5}"
case $p in
  *'"fail":true'*)
    echo "failing on purpose" >&2
    exit 1
    ;;
esac
if [ "$LIFELINE_KIND" = teardown ]; then : >"$LIFELINE_WORKSPACE/absent"; else rm -f "$LIFELINE_WORKSPACE/absent"; fi
echo "done"
