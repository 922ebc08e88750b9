# Lifeline callback plugin: appends one JSON line per task start and end to $LIFELINE_EVENTS_FILE, so
# every task becomes a Lifeline phase (SPEC §9.4) with its timing. A start line carries "phase" (the
# task name); an end line carries "phase_end" (the same name) and the task's status. Each line is
# stamped with its own "at", so durations do not depend on when Lifeline reads the file.
# A task that sets the fact `lifeline_outputs` (a mapping, e.g. with set_fact) publishes it as the
# attempt's outputs (SPEC §12.1): one {"output": {...}} line, which Lifeline merges into them.
from __future__ import annotations

import json
import os
from datetime import datetime, timezone

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: lifeline_events
type: aggregate
short_description: writes task starts and ends as Lifeline runner events
description:
  - Appends JSON lines to the file named by LIFELINE_EVENTS_FILE (does nothing when it is unset).
requirements:
  - enable with ANSIBLE_CALLBACKS_ENABLED=lifeline_events
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "lifeline_events"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._path = os.environ.get("LIFELINE_EVENTS_FILE")
        self._task = None

    def _write(self, event):
        if not self._path:
            return
        event["at"] = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        with open(self._path, "a", encoding="utf-8") as f:
            f.write(json.dumps(event) + "\n")

    def _start(self, task):
        self._end("ok")  # a task that reported nothing (e.g. skipped on every host) ends here
        self._task = task.get_name().strip() or task.action
        self._write({"phase": self._task, "action": task.action})

    def _end(self, status):
        if self._task is None:
            return
        self._write({"phase_end": self._task, "status": status})
        self._task = None

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._start(task)

    def v2_playbook_on_handler_task_start(self, task):
        self._start(task)

    def v2_runner_on_ok(self, result):
        outputs = (result._result.get("ansible_facts") or {}).get("lifeline_outputs")
        if isinstance(outputs, dict):
            self._write({"output": outputs})
        self._end("changed" if result._result.get("changed") else "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._end("ignored" if ignore_errors else "failed")

    def v2_runner_on_skipped(self, result):
        self._end("skipped")

    def v2_runner_on_unreachable(self, result):
        self._end("unreachable")

    def v2_playbook_on_stats(self, stats):
        self._end("ok")
