"""Greet the name the event carries: ``Ada`` in, ``Hello, Ada!`` out.

A cold function: the event body arrives on stdin, the reply goes to stdout, and exit status 0
means success. Event metadata, unused here, is in CE_ID, CE_SOURCE, CE_TYPE and CE_SUBJECT.
"""

import sys


def main() -> None:
    # Bytes in, so that a body which is not UTF-8 still gets an answer instead of a traceback.
    name = sys.stdin.buffer.read().decode("utf-8", errors="replace").strip()
    print(f"Hello, {name or 'world'}!")


if __name__ == "__main__":
    main()
