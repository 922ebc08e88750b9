#!/bin/sh
# Runs one of this example's playbooks against localhost (connection local) for Lifeline:
#   run.sh deploy|teardown|check
# Ansible's settings come from here, not from the server's environment (plans do not inherit it):
# the callback plugin that turns every task into a Lifeline phase, colours, and a writable temp dir.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
action=${1:?usage: run.sh deploy|teardown|check}
case "$action" in deploy | teardown | check) ;; *) echo "unknown action: $action" >&2; exit 64 ;; esac

: "${LIFELINE_WORKSPACE:?run by Lifeline: LIFELINE_WORKSPACE is not set}"
export ANSIBLE_CALLBACK_PLUGINS="$here/callback_plugins"
# Python would cache the compiled plugin in callback_plugins/__pycache__, i.e. write into this example.
export PYTHONDONTWRITEBYTECODE=1
export ANSIBLE_CALLBACKS_ENABLED=lifeline_events
export ANSIBLE_LOCALHOST_WARNING=false
export ANSIBLE_INVENTORY_UNPARSED_WARNING=false
export ANSIBLE_RETRY_FILES_ENABLED=false
export ANSIBLE_NOCOLOR=false
export ANSIBLE_FORCE_COLOR="${ANSIBLE_FORCE_COLOR:-1}"
# Ansible's own files (temp dirs, facts cache) live in the deployment's workspace, not in $HOME.
export ANSIBLE_HOME="$LIFELINE_WORKSPACE/.ansible"
export ANSIBLE_LOCAL_TEMP="$LIFELINE_WORKSPACE/.ansible/tmp"
export ANSIBLE_REMOTE_TEMP="$LIFELINE_WORKSPACE/.ansible/tmp"

if [ "$action" = check ]; then
  verdict="$LIFELINE_WORKSPACE/.check-verdict"
  rm -f "$verdict"
  ansible-playbook -i localhost, -c local "$here/check.yml" -e "verdict_file=$verdict" || exit 1
  case "$(cat "$verdict" 2>/dev/null)" in
    up) exit 0 ;;
    absent) exit 3 ;;
    *) exit 1 ;;
  esac
fi
exec ansible-playbook -i localhost, -c local "$here/$action.yml"
