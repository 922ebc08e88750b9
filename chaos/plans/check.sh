#!/bin/sh
# The chaos plan's check: absent (3) after a successful teardown, up (0) otherwise.
echo "checking $LIFELINE_DEPLOYMENT_NAME"
[ -f "$LIFELINE_WORKSPACE/absent" ] && exit 3
exit 0
