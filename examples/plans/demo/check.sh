#!/bin/sh
# Demo check: exit 0 when the deployment is up, 3 when it is absent (SPEC §4).
if [ -f "$LIFELINE_WORKSPACE/demo-up" ]; then
  echo "up"
  exit 0
fi
echo "absent"
exit 3
