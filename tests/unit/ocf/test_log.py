"""Logging conventions (HA_LOGFILE, HA_debug, syslog), exit reasons and tracing."""

import io
import os

from pyra.host.command import run
from pyra.ocf.log import Logger, emit_exit_reason, one_line, shorten


def test_exit_reason_is_one_line_of_at_most_128_chars():
    out = io.StringIO()
    emit_exit_reason("x" * 500 + "\nocf-exit-reason:forged", stream=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ocf-exit-reason:")
    assert len(lines[0]) - len("ocf-exit-reason:") <= 128


def test_one_line_escapes_controls():
    assert one_line("a\nb\rc\x00d") == "a\\nb\\rc\\x00d"
    assert shorten("  short  ") == "short"


def test_logfile_and_debug_levels(tmp_path):
    logfile = tmp_path / "ha.log"
    log = Logger("Agent", "rsc1", {"HA_LOGFILE": str(logfile), "HA_debug": "0"})
    log.debug("hidden")
    log.info("shown %s", "value")
    log.warning("multi\nline")
    text = logfile.read_text()
    assert "hidden" not in text
    assert "Agent(rsc1)[" in text and "INFO: shown value" in text
    assert "WARNING: multi\\nline" in text and len(text.splitlines()) == 2
    log = Logger("Agent", "rsc1", {"HA_LOGFILE": str(logfile), "HA_debug": "1"})
    log.debug("now visible")
    assert "DEBUG: now visible" in logfile.read_text()


def test_stderr_only_without_other_destinations(capsys):
    Logger("Agent", "r", {}).warning("to stderr")
    assert "WARNING: to stderr" in capsys.readouterr().err
    Logger("Agent", "r", {"HA_LOGFACILITY": "daemon"}).warning("to syslog only")
    assert capsys.readouterr().err == ""


def test_trace_records_every_external_call(tmp_path):
    trace = tmp_path / "trace"
    log = Logger("Agent", "r", {"OCF_TRACE_RA": "1", "OCF_TRACE_FILE": str(trace)}, "start")
    assert log.tracing
    run(["/bin/echo", "hello"], tracer=log.trace_command)
    run(["/bin/sh", "-c", "exit 3"], tracer=log.trace_command)
    log.close()
    text = trace.read_text()
    assert "argv=['/bin/echo', 'hello'] rc=0" in text and "stdout=hello" in text
    assert "rc=3" in text and "duration_ms=" in text


def test_trace_dir_layout(tmp_path):
    log = Logger("Agent", "rsc1", {"OCF_RESKEY_trace_ra": "1", "OCF_RESKEY_trace_dir": str(tmp_path)}, "stop")
    log.trace("x")
    log.close()
    names = os.listdir(tmp_path / "Agent")
    assert len(names) == 1 and names[0].startswith("rsc1.stop.")
