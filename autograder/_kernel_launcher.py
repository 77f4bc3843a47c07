"""Kernel launcher used inside the grading sandbox: set resource limits, then become ipykernel.

    python _kernel_launcher.py --memory-mb 2048 --cpu-s 120 --fsize-mb 64 --nofile 256 \
        --preload torch,comp448.grading -- -f CONN

The limits are inherited by everything the student's code starts (threads, forks) and cannot
be raised again from inside (hard limits). Heavy modules are imported before the kernel starts
(``--preload``), so that ``import torch`` does not eat into the first cell's timeout. Memory is the address-space limit (RLIMIT_AS);
where a memory cgroup is available the autograder sets one too (autograder/sandbox.py).
"""
import argparse
import resource
import sys


def main(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--memory-mb", type=int, required=True)
    p.add_argument("--cpu-s", type=int, required=True)
    p.add_argument("--fsize-mb", type=int, required=True)
    p.add_argument("--nofile", type=int, default=256)
    p.add_argument("--preload", default="")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    a = p.parse_args(argv)
    mb = 1 << 20
    resource.setrlimit(resource.RLIMIT_AS, (a.memory_mb * mb, a.memory_mb * mb))
    resource.setrlimit(resource.RLIMIT_CPU, (a.cpu_s, a.cpu_s + 5))
    resource.setrlimit(resource.RLIMIT_FSIZE, (a.fsize_mb * mb, a.fsize_mb * mb))
    resource.setrlimit(resource.RLIMIT_NOFILE, (a.nofile, a.nofile))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    rest = a.rest[1:] if a.rest[:1] == ["--"] else a.rest
    for name in filter(None, a.preload.split(",")):
        try:
            __import__(name)
        except Exception:  # noqa: BLE001 - the notebook will report its own import errors
            pass
    from ipykernel import kernelapp
    sys.argv = [sys.argv[0], *rest]
    kernelapp.launch_new_instance()


if __name__ == "__main__":
    main(sys.argv[1:])
