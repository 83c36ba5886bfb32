"""Killing a program mid-run the way an outage would: the fault-tolerance tests' shared step."""

import signal
import subprocess
import time


def kill_when(args, ready, *, env, cwd, timeout=300):
    """Starts ``args``, waits until ``ready()`` is true, sends SIGKILL and returns the seconds it ran.

    Fails the test if the program ends (or ``timeout`` passes) before ``ready()``: a run that finishes
    before it can be interrupted tests nothing."""
    began = time.perf_counter()
    process = subprocess.Popen(args, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + timeout
        was_ready = False
        while time.time() < deadline and process.poll() is None and not (was_ready := ready()):
            time.sleep(0.01)
        assert process.poll() is None, "the program ended before it could be interrupted"
        assert was_ready, f"the program was not ready to be interrupted within {timeout}s"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    return time.perf_counter() - began
