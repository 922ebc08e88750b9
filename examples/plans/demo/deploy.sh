#!/bin/sh
# Demo deploy: ten one-second steps with progress lines, phase markers as runner events, and a marker
# file in the deployment's workspace saying it is up. Params arrive as JSON in LIFELINE_PARAMS.
set -eu

params=${LIFELINE_PARAMS:-}
replicas=$(printf '%s' "$params" | sed -n 's/.*"replicas":\([0-9][0-9]*\).*/\1/p')
replicas=${replicas:-1}
case "$params" in
  *'"api_key":'*) key=provided ;;
  *) key=none ;;
esac

event() { printf '%s\n' "$1" >>"$LIFELINE_EVENTS_FILE"; }

echo "deploying $LIFELINE_DEPLOYMENT_NAME (attempt $LIFELINE_ATTEMPT_NUMBER) in ${REGION:-?}: $replicas replica(s), api key: $key"
event '{"phase":"provision","step":1,"of":10}'
i=1
while [ "$i" -le 10 ]; do
  case $i in
    1) what="reserving capacity" ;;
    4) what="pulling image"; event '{"phase":"install","step":4,"of":10}' ;;
    8) what="starting $replicas replica(s)"; event '{"phase":"start","step":8,"of":10}' ;;
    10) what="health check" ;;
    *) what="working" ;;
  esac
  echo "step $i/10: $what"
  sleep 1
  i=$((i + 1))
done
printf 'replicas=%s\nsince=%s\n' "$replicas" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$LIFELINE_WORKSPACE/demo-up"
event '{"phase":"done","up":true}'
echo "$LIFELINE_DEPLOYMENT_NAME is up"
