#!/bin/sh
# Demo teardown: about three seconds, then the workspace marker is gone.
set -eu

event() { printf '%s\n' "$1" >>"$LIFELINE_EVENTS_FILE"; }

echo "tearing down $LIFELINE_DEPLOYMENT_NAME"
event '{"phase":"drain"}'
for i in 1 2 3; do
  echo "step $i/3: stopping"
  sleep 1
done
rm -f "$LIFELINE_WORKSPACE/demo-up"
event '{"phase":"done","up":false}'
echo "$LIFELINE_DEPLOYMENT_NAME is gone"
