"""Moonshine is loaded in a child process first: on a CPU it was not built for, libmoonshine kills the process
that loads it ("Illegal instruction"), which must be a test process, not the server."""

from __future__ import annotations

import numpy as np
import pytest

from voice_gateway.asr.moonshine_engine import MoonshineTranscriber, MoonshineUnavailable, check_runs_here


def test_a_probe_killed_by_a_signal_is_a_clear_error_not_a_dead_server() -> None:
    killed = "import os, signal; os.kill(os.getpid(), signal.SIGILL)"  # what libmoonshine does on such a CPU
    with pytest.raises(MoonshineUnavailable, match=r"cannot run on this CPU: .* SIGILL \(choose asr_engine whisper-tiny\.en\)"):
        check_runs_here(killed)


def test_a_probe_that_fails_or_hangs_says_so() -> None:
    with pytest.raises(MoonshineUnavailable, match=r"did not load: OSError: libmoonshine\.so: not found"):
        check_runs_here("raise OSError('libmoonshine.so: not found')")
    with pytest.raises(MoonshineUnavailable, match="did not load within 1 s"):
        check_runs_here("import time; time.sleep(30)", timeout_s=1.0)


def test_the_real_engine_loads_and_decodes_or_is_refused_without_killing_this_process() -> None:
    """Where the CPU runs it (the AVX-512 machines here) the engine hears silence as nothing; where it does not
    (seen on an AMD EPYC without AVX-512) the load is refused with the reason, and this process goes on."""
    try:
        transcriber = MoonshineTranscriber()
    except MoonshineUnavailable as exc:
        assert "cannot run on this CPU" in str(exc)
    else:
        assert transcriber.transcribe(np.zeros(16000, dtype=np.float32)).text == ""
