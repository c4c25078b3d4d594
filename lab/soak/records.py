"""The soak workload's records and acknowledgements, read on the host (the writer is lab/soak/writer.sh).

Owns: the record format, the ack stream reader (``AckStream``: a file that grows, read incrementally, lines
that may be torn by a killed writer or split by a serial port), the two invariants that live in it, and the
check of the records on disk against what was acknowledged.

Invariants held by ``AckStream.feed`` (each breach is a ``Violation`` string in ``violations``):
  * one writer at a time: once a writer instance (its id) has announced itself, no earlier instance
    acknowledges again (two copies of a guest or container writing at once);
  * nothing acknowledged is lost: a restarted writer resumes after the last record it finds on its target,
    and that must be at least the highest sequence number ever acknowledged (for writers with a target).
``verify`` checks that each acknowledged record is on the target, intact, with the writer id that
acknowledged it.
"""
import hashlib

SIZE = 64


def digest(seq, writer):
    return hashlib.md5(b"%d %s" % (seq, writer.encode())).hexdigest()[:12]


def format_record(seq, writer):
    """The 64 bytes the writer puts at offset 64*seq."""
    line = b"R %010d %s %s \n" % (seq, writer.encode(), digest(seq, writer).encode())
    assert len(line) == SIZE, line
    return line


def parse_record(blob):
    """(seq, writer) of one 64-byte record, or None when it is not an intact record."""
    if len(blob) != SIZE or not blob.startswith(b"R ") or not blob.endswith(b" \n"):
        return None
    try:
        _r, seq, writer, check = blob.decode("ascii").split()
        seq = int(seq)
    except (UnicodeDecodeError, ValueError):
        return None
    return (seq, writer) if check == digest(seq, writer) else None


class AckStream:
    """The acknowledgements of one writer target (all instances over time), fed as the file grows."""

    def __init__(self, name, has_target=True):
        self.name = name
        self.has_target = has_target
        self.pending = b""
        self.instances = []        # writer ids in order of announcement
        self.acked = {}            # seq -> writer id that acknowledged it (a writer without target restarts at 1)
        self.total = 0             # acknowledgements received
        self.max_acked = 0
        self.torn = 0              # lines that do not parse (a writer killed mid-line)
        self.violations = []
        self.offset = 0            # bytes of the file consumed so far

    @property
    def current(self):
        return self.instances[-1] if self.instances else None

    def read_file(self, path):
        """Feed what was appended to ``path`` since the last call."""
        try:
            with open(path, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except FileNotFoundError:
            return
        self.offset += len(data)
        self.feed(data)

    def feed(self, data):
        lines = (self.pending + data.replace(b"\r", b"")).split(b"\n")
        self.pending = lines.pop()
        for line in lines:
            self._line(line.decode("ascii", "replace"))

    def _line(self, line):
        words = line.split()
        if len(words) == 4 and words[0] == "boot" and words[2] == "resume" and words[3].isdigit():
            writer, resume = words[1], int(words[3])
            if writer in self.instances:
                self.violations.append("%s: writer %s announced itself twice" % (self.name, writer))
                return
            if self.has_target and resume < self.max_acked:
                lost = self.max_acked - resume
                self.violations.append("%s: writer %s resumed after record %d, but %d was acknowledged: %d "
                                       "acknowledged record(s) lost" % (self.name, writer, resume,
                                                                        self.max_acked, lost))
            self.instances.append(writer)
            return
        if len(words) == 3 and words[0] == "ack" and words[1].isdigit():
            seq, writer = int(words[1]), words[2]
            if writer not in self.instances:
                self.torn += 1  # its announcement was torn: count, but judge by what follows
                self.instances.append(writer)
            if writer != self.current:
                self.violations.append("%s: record %d acknowledged by writer %s after writer %s started: two "
                                       "writers at once" % (self.name, seq, writer, self.current))
                return
            self.acked[seq] = writer
            self.total += 1
            self.max_acked = max(self.max_acked, seq)
            return
        if line.strip():
            self.torn += 1


def verify(stream, blob, first=1):
    """Problems with the acknowledged records of ``stream`` in ``blob`` (the target's bytes from record
    ``first`` on): missing, damaged, or written by another writer than the one that acknowledged it."""
    problems = []
    for seq in sorted(s for s in stream.acked if s >= first):
        start = (seq - first) * SIZE
        record = parse_record(blob[start:start + SIZE])
        if record is None:
            problems.append("%s: acknowledged record %d is missing or damaged" % (stream.name, seq))
        elif record != (seq, stream.acked[seq]):
            problems.append("%s: record %d holds %r, acknowledged by writer %s" % (stream.name, seq, record,
                                                                                 stream.acked[seq]))
        if len(problems) >= 10:
            problems.append("%s: ... (stopped at 10)" % stream.name)
            break
    return problems
