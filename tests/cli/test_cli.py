# SPDX-License-Identifier: MIT
"""Tests of the `takt` CLI through its exit codes and output.

JSON output is parsed, never grepped.  Every channel is named
"tc-<pid>-<n>-<tag>" and removed in a cleanup even when the test fails;
`ls` and `gc` are always given the test's own names as patterns, so
channels of tests running in parallel are never touched.

Run through run_tests.py (ctest: `cli`), with TAKT_BIN and TAKT_CLI_HELPER
set to the built takt binary and cli_helper.
"""
import glob
import itertools
import json
import os
import select
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import unittest

TAKT = os.environ.get("TAKT_BIN", "takt")
HELPER = os.environ.get("TAKT_CLI_HELPER", "cli_helper")
SHM = "/dev/shm"
PID = os.getpid()
SEQ = itertools.count()

# Exit codes (docs/CLI.md).
OK, RUNTIME, USAGE, NOTFOUND, BUSY, TIMEOUT = 0, 1, 2, 3, 4, 5

SUBCOMMANDS = ["ls", "info", "stat", "create", "rm", "gc", "send", "recv", "state", "bench"]


def run(*args, stdin=b"", timeout=30, env=None, prog=None, user=None):
    return subprocess.run([prog or TAKT, *args], input=stdin, capture_output=True,
                          timeout=timeout, env=env, user=user)


def shm_objects(name):
    """The /dev/shm files behind a channel: segment and semaphores."""
    return glob.glob(f"{SHM}/takt.{glob.escape(name)}") + \
        glob.glob(f"{SHM}/sem.takt.{glob.escape(name)}.*")


class CliTest(unittest.TestCase):
    """Helpers: unique names with cleanup, endpoint holders, checked runs."""

    def new_name(self, tag):
        name = f"tc-{PID}-{next(SEQ)}-{tag}"
        self.addCleanup(self._remove, name)
        return name

    @staticmethod
    def _remove(name):
        subprocess.run([TAKT, "rm", "--force", name], capture_output=True, timeout=30)
        for path in shm_objects(name):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def ok(self, *args, **kw):
        r = run(*args, **kw)
        self.assertEqual(r.returncode, OK,
                         f"takt {' '.join(map(str, args))}: {r.stderr.decode(errors='replace')}")
        return r

    def fails(self, code, *args, **kw):
        """Run, expect exit `code` and exactly one error line "takt: ..."; return it."""
        r = run(*args, **kw)
        err = r.stderr.decode(errors="replace")
        self.assertEqual(r.returncode, code, f"takt {' '.join(map(str, args))}: {err!r}")
        lines = err.splitlines()
        self.assertEqual(len(lines), 1, f"expected one error line, got {err!r}")
        self.assertTrue(lines[0].startswith("takt: "), lines[0])
        return lines[0]

    def create(self, tag, *opts):
        name = self.new_name(tag)
        self.ok("create", *opts, name)
        return name

    def exists(self, name):
        return os.path.exists(f"{SHM}/takt.{name}")

    def ls(self, *patterns):
        doc = json.loads(self.ok("ls", "--json", *patterns).stdout)
        self.assertIsInstance(doc["channels"], list)
        return {c["name"]: c for c in doc["channels"]}

    def info(self, name):
        return json.loads(self.ok("info", "--json", name).stdout)

    def hold(self, *role_names):
        """Start cli_helper holding endpoints; wait for its "ready" line."""
        p = subprocess.Popen([HELPER, *role_names], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE)
        self.addCleanup(self._stop, p)
        ready, _, _ = select.select([p.stdout], [], [], 20)
        self.assertTrue(ready, "cli_helper did not answer within 20 s")
        line = p.stdout.readline()
        self.assertEqual(line, b"ready\n", f"cli_helper: {line!r}")
        return p

    @staticmethod
    def _stop(p):
        if p.poll() is None:
            p.kill()
        p.wait(timeout=20)
        for f in (p.stdin, p.stdout):
            if f:
                f.close()


class TestHelpAndUsage(CliTest):
    def test_version(self):
        out = self.ok("--version").stdout.decode()
        self.assertRegex(out, r"^takt \d+\.\d+\.\d+")

    def test_main_help_lists_every_command(self):
        out = self.ok("--help").stdout.decode()
        self.assertTrue(out.startswith("Usage: takt"))
        for cmd in SUBCOMMANDS:
            self.assertRegex(out, rf"\n  {cmd} ")

    def test_help_of_every_subcommand(self):
        for cmd in SUBCOMMANDS:
            with self.subTest(cmd=cmd):
                r = self.ok(cmd, "--help")
                self.assertTrue(r.stdout, f"{cmd} --help printed nothing")
                if cmd != "bench":  # bench --help is takt-bench's when it exists
                    self.assertTrue(r.stdout.decode().startswith(f"Usage: takt {cmd}"))
                    self.assertEqual(self.ok("help", cmd).stdout, r.stdout)
                    self.assertEqual(self.ok(cmd, "-h").stdout, r.stdout)

    def test_usage_errors(self):
        self.assertEqual(run().returncode, USAGE)
        self.assertIn("unknown command", self.fails(USAGE, "frobnicate"))
        self.assertIn("unknown option", self.fails(USAGE, "--frobnicate"))
        self.assertIn("unknown command", self.fails(USAGE, "help", "frobnicate"))
        for cmd in ["ls", "info", "stat", "create", "rm", "gc", "send", "recv"]:
            with self.subTest(cmd=cmd):
                line = self.fails(USAGE, cmd, "--no-such-option")
                self.assertIn(f"takt: {cmd}: unknown option \"--no-such-option\"", line)
        for cmd in ["info", "stat", "create", "rm", "send", "recv"]:
            with self.subTest(cmd=cmd, missing="NAME"):
                self.fails(USAGE, cmd)
        self.assertIn("needs a value", self.fails(USAGE, "create", "x", "--capacity"))
        self.assertIn("--interval", self.fails(USAGE, "stat", "x", "--interval", "soon"))
        self.assertIn("--count", self.fails(USAGE, "stat", "x", "--count", "-1"))
        self.assertIn("--timeout", self.fails(USAGE, "recv", "x", "--timeout", "1.5x"))
        self.assertIn("--type", self.fails(USAGE, "send", "x", "--type", "4294901760", "d"))
        self.assertIn("exclude", self.fails(USAGE, "recv", "x", "--hex", "--raw"))


class TestCreate(CliTest):
    def test_defaults(self):
        name = self.create("defaults")
        i = self.info(name)
        self.assertEqual(i["name"], name)
        self.assertEqual(i["kind"], "queue")
        self.assertEqual(i["lanes"], 1)
        self.assertEqual(i["capacity"], 1 << 20)
        self.assertEqual(i["max_record"], 64 << 10)
        self.assertEqual(len(i["lane_stats"]), 1)
        self.assertEqual(stat.S_IMODE(os.stat(f"{SHM}/takt.{name}").st_mode), 0o600)

    def test_geometry_and_units(self):
        name = self.create("geo", "--lanes", "3", "--capacity", "64 KiB",
                           "--max-record", "1.5KiB", "--mode", "0640")
        i = self.info(name)
        self.assertEqual((i["lanes"], i["capacity"], i["max_record"]), (3, 65536, 1536))
        self.assertEqual(len(i["lane_stats"]), 3)
        self.assertEqual(stat.S_IMODE(os.stat(f"{SHM}/takt.{name}").st_mode), 0o640)
        small = self.create("small", "-c", "4K")
        self.assertEqual(self.info(small)["max_record"], 1024)  # capacity / 4
        big = self.create("big", "--capacity", "0.5MiB", "--max-record", "4096B")
        self.assertEqual((self.info(big)["capacity"], self.info(big)["max_record"]),
                         (512 << 10, 4096))

    def test_exists(self):
        name = self.create("dup")
        line = self.fails(BUSY, "create", name)
        self.assertEqual(line, f'takt: create: channel "{name}": '
                               "a channel of that name already exists")

    def test_bad_names_create_nothing(self):
        prefix = f"tc-{PID}-badname"
        bad = [f"{prefix}/x", f"{prefix} space", f"{prefix}-" + "x" * 200, f"{prefix}-\u00fc",
               f"{prefix}*", "", ".", ".."]
        for name in bad:
            with self.subTest(name=name):
                line = self.fails(USAGE, "create", name)
                self.assertIn("invalid name", line)
        self.assertEqual([f for f in os.listdir(SHM) if prefix in f], [])
        for cmd in (["info"], ["rm"], ["stat"], ["recv"], ["send"]):
            with self.subTest(cmd=cmd):
                self.assertIn("invalid name", self.fails(USAGE, *cmd, f"{prefix}/x"))

    def test_bad_sizes_create_nothing(self):
        cases = [
            (["--capacity", "1000"], "power of two"),
            (["--capacity", "512"], "power of two"),
            (["--capacity", "2GiB"], "power of two"),
            (["--capacity", "12XB"], "--capacity"),
            (["--capacity", "1MB"], "--capacity"),
            (["--capacity", "-1"], "--capacity"),
            (["--capacity", "0.3KiB"], "--capacity"),
            (["--capacity", "99999999999999999999999999999"], "too large"),
            (["--capacity", "1e3"], "--capacity"),
            (["--max-record", "0"], "--max-record"),
            (["--capacity", "4KiB", "--max-record", "2KiB"], "quarter"),
            (["--lanes", "0"], "--lanes"),
            (["--lanes", "65"], "--lanes"),
            (["--lanes", "two"], "--lanes"),
            (["--mode", "9999"], "--mode"),
            (["--mode", "rw"], "--mode"),
            (["--mode", "0"], "--mode"),
        ]
        for opts, word in cases:
            with self.subTest(opts=opts):
                name = self.new_name("badsize")
                line = self.fails(USAGE, "create", *opts, name)
                self.assertIn(word, line)
                self.assertFalse(self.exists(name))
                self.assertEqual(shm_objects(name), [])


class TestMissing(CliTest):
    def test_missing_channel(self):
        name = self.new_name("missing")
        for args in (["info", name], ["stat", "--count", "1", name], ["rm", name],
                     ["rm", "--force", name], ["send", name, "x"],
                     ["recv", "--timeout", "100ms", name]):
            with self.subTest(args=args):
                line = self.fails(NOTFOUND, *args)
                self.assertIn(f'channel "{name}"', line)
                self.assertIn("no such channel", line)
        self.assertEqual(self.ls(name), {})

    def test_missing_semaphores_are_named(self):
        # the segment is there (ls lists it) but an endpoint's semaphore is
        # gone: say so, not "no such channel"
        name = self.create("nosem")
        os.unlink(f"{SHM}/sem.takt.{name}.rx")
        for args in (["send", name, "x"], ["recv", "--timeout", "100ms", name]):
            with self.subTest(args=args):
                line = self.fails(NOTFOUND, *args)
                self.assertIn("semaphores are missing", line)
                self.assertIn("rm --force", line)
        self.assertIn(name, self.ls(name))


class TestLsStaleGc(CliTest):
    def test_live_then_killed_is_stale_and_gc_removes_it(self):
        name = self.create("stale", "--lanes", "2")
        holder = self.hold("consumer", name, "producer", name)
        c = self.ls(name)[name]
        self.assertEqual((c["consumer_alive"], c["producers_alive"], c["producers_total"]),
                         (True, 1, 2))
        self.assertFalse(c["stale"])
        self.assertNotIn("error", c)
        # gc spares it while it is live
        self.assertEqual(self.ok("gc", name).stdout, b"")
        self.assertTrue(self.exists(name))

        holder.kill()
        holder.wait(timeout=20)
        c = self.ls(name)[name]
        self.assertTrue(c["stale"])
        self.assertEqual((c["consumer_alive"], c["producers_alive"]), (False, 0))
        table = self.ok("ls", name).stdout.decode().splitlines()
        self.assertEqual(len(table), 2)
        self.assertTrue(table[1].startswith(name) and table[1].endswith("stale"), table[1])

        self.assertEqual(self.ok("gc", "--dry-run", name).stdout.decode(),
                         f"would remove {name}\n")
        self.assertTrue(self.exists(name))
        self.assertEqual(self.ok("gc", name).stdout.decode(), f"removed {name}\n")
        self.assertEqual(self.ls(name), {})
        self.assertEqual(shm_objects(name), [], "segment or semaphores left behind")

    def test_gc_patterns_and_min_age(self):
        stale = self.create("gcpat-stale")
        live = self.create("gcpat-live")
        self.hold("producer", live)
        pattern = f"tc-{PID}-*-gcpat-*"
        self.assertEqual(self.ok("gc", "--min-age", "1h", pattern).stdout, b"")
        self.assertTrue(self.exists(stale))
        self.assertEqual(self.ok("gc", pattern).stdout.decode(), f"removed {stale}\n")
        self.assertFalse(self.exists(stale))
        self.assertTrue(self.exists(live))

    def test_ls_fields_and_fill(self):
        name = self.create("fill", "--capacity", "64KiB")
        self.ok("send", name, stdin=b"a" * 100 + b"\n" + b"b" * 100 + b"\n" + b"\n")
        c = self.ls(name)[name]
        self.assertEqual(c["kind"], "queue")
        self.assertEqual((c["lanes"], c["capacity"], c["fill_capacity"]), (1, 65536, 65536))
        self.assertEqual((c["records_in"], c["records_out"]), (3, 0))
        self.assertEqual(c["bytes_in"], 200)
        self.assertGreaterEqual(c["fill_bytes"], 200)
        self.assertAlmostEqual(c["fill_percent"], 100.0 * c["fill_bytes"] / 65536, places=3)
        self.assertGreaterEqual(c["age_ns"], 0)
        self.assertLess(c["age_ns"], 600e9)
        self.assertTrue(c["stale"])
        self.ok("recv", "--count", "3", name)
        c = self.ls(name)[name]
        self.assertEqual((c["records_out"], c["fill_bytes"]), (3, 0))

    def test_unopenable_channels_are_listed_with_their_error(self):
        corrupt = self.new_name("corrupt")
        notready = self.new_name("notready")
        with open(f"{SHM}/takt.{corrupt}", "wb") as f:
            f.write(b"\xde\xad\xbe\xef" * 2048)
        open(f"{SHM}/takt.{notready}", "wb").close()
        listing = self.ls(f"tc-{PID}-*")
        self.assertEqual(listing[corrupt]["errno"], "EBADMSG")
        self.assertEqual(listing[notready]["errno"], "EAGAIN")
        for c in (listing[corrupt], listing[notready]):
            self.assertIsInstance(c["error"], str)
            self.assertNotIn("stale", c)
        table = self.ok("ls", corrupt).stdout.decode().splitlines()
        self.assertIn("error: corrupt", table[1])
        self.assertIn("corrupt", self.fails(RUNTIME, "info", corrupt))
        self.assertIn("not ready", self.fails(RUNTIME, "stat", "--count", "1", notready))
        self.assertIn("corrupt", self.fails(RUNTIME, "send", corrupt, "x"))
        # a fresh empty segment may be a creation that has not locked yet:
        # spared (for 10 s); the garbage is removed
        removed = self.ok("gc", corrupt, notready).stdout.decode().splitlines()
        self.assertEqual(removed, [f"removed {corrupt}"])
        self.assertTrue(self.exists(notready))

    def test_a_fifo_under_a_channel_name_never_blocks(self):
        # /dev/shm is world-writable: a FIFO there must not hang ls, info or gc
        name = self.new_name("fifo")
        os.mkfifo(f"{SHM}/takt.{name}", 0o600)
        listing = self.ls(name)
        self.assertEqual(listing[name]["errno"], "EBADMSG")
        self.assertIn("corrupt", self.fails(RUNTIME, "info", name))
        self.assertIn("corrupt", self.fails(RUNTIME, "send", name, "x"))
        self.fails(RUNTIME, "gc", name)  # not removed: not a segment
        self.assertTrue(self.exists(name))
        self.ok("rm", "--force", name)
        self.assertFalse(os.path.lexists(f"{SHM}/takt.{name}"))

    def test_unreadable_channel_is_listed(self):
        if os.geteuid() == 0:
            # root reads every file: look at a 0600 channel as nobody instead
            name = self.create("noperm")
            try:
                r = run("ls", "--json", name, user=65534)
            except PermissionError as e:
                self.skipTest(f"cannot run as nobody: {e}")
            if r.returncode == 126 or b"Permission denied" in r.stderr:
                self.skipTest("the takt binary is not reachable by nobody")
        else:
            name = self.create("noperm", "--mode", "0200")
            r = run("ls", "--json", name)
        self.assertEqual(r.returncode, OK, r.stderr)
        c = json.loads(r.stdout)["channels"]
        self.assertEqual([(x["name"], x["errno"]) for x in c], [(name, "EACCES")])

    def test_squatted_semaphore_is_permission_denied(self):
        # another user's file under a channel's semaphore name cannot be
        # removed in the sticky /dev/shm: "permission denied", not "exists"
        if os.geteuid() != 0:
            self.skipTest("needs root to plant a file nobody cannot remove")
        name = self.new_name("squat")
        squat = f"{SHM}/sem.takt.{name}.rx"
        with open(squat, "wb"):
            pass
        self.addCleanup(lambda: os.path.exists(squat) and os.unlink(squat))
        try:
            r = run("create", name, user=65534)
        except PermissionError as e:
            self.skipTest(f"cannot run as nobody: {e}")
        if r.returncode == 126 or b"Permission denied" in r.stderr:
            self.skipTest("the takt binary is not reachable by nobody")
        err = r.stderr.decode(errors="replace")
        self.assertEqual(r.returncode, RUNTIME, err)
        self.assertIn("permission denied", err)
        self.assertFalse(self.exists(name), "a failed create leaves nothing behind")


class TestRm(CliTest):
    def test_rm_refuses_live_and_force_removes(self):
        name = self.create("rmlive")
        self.hold("producer", name)
        line = self.fails(BUSY, "rm", name)
        self.assertIn("live endpoint", line)
        self.assertTrue(self.exists(name))
        self.assertEqual(self.ok("rm", "--force", "--verbose", name).stdout.decode(),
                         f"removed {name}\n")
        self.assertFalse(self.exists(name))
        self.assertEqual(shm_objects(name), [])
        self.fails(NOTFOUND, "rm", name)

    def test_rm_stale(self):
        a, b = self.create("rm-a"), self.create("rm-b")
        self.assertEqual(self.ok("rm", a, b).stdout, b"")
        self.assertFalse(self.exists(a) or self.exists(b))

    def test_rm_several_reports_first_failure(self):
        a = self.create("rm-c")
        missing = self.new_name("rm-missing")
        r = run("rm", missing, a)
        self.assertEqual(r.returncode, NOTFOUND)
        self.assertFalse(self.exists(a))


class TestSendRecv(CliTest):
    def start_recv(self, name, *opts):
        p = subprocess.Popen([TAKT, "recv", *opts, name], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        self.addCleanup(self._stop, p)
        # Wait until it holds the consumer slot, so the records really cross
        # from one live process to another.
        deadline = time.monotonic() + 20
        while not self.ls(name)[name]["consumer_alive"]:
            self.assertIsNone(p.poll(), "recv exited early")
            self.assertLess(time.monotonic(), deadline, "recv never opened the channel")
            time.sleep(0.01)
        return p

    def finish(self, p, code=OK):
        out, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, code, err.decode(errors="replace"))
        return out

    def test_raw_byte_exact_across_processes(self):
        name = self.create("raw", "--capacity", "64KiB")
        records = [bytes(range(256)) * 3 + b"\n\r\n\x00end", b"", b"\n", b"\xff\x00\xfe", b"x"]
        recv = self.start_recv(name, "--raw", "--count", str(len(records)), "--timeout", "20s")
        for rec in records:
            self.ok("send", "--raw", name, stdin=rec)
        self.assertEqual(self.finish(recv), b"".join(records))

    def test_lines_exact_across_processes(self):
        text = "alpha\n\n\tbeta  gamma \n\u00fcml\u00e4ut \u2713\n\nC:\\path\\x41\nlast"
        lines = text.split("\n")
        name = self.create("lines")
        recv = self.start_recv(name, "--count", str(len(lines)), "--timeout", "20s")
        self.ok("send", name, "-", stdin=text.encode())
        self.assertEqual(self.finish(recv), (text + "\n").encode())
        i = self.info(name)
        self.assertEqual((i["records_in"], i["records_out"]), (len(lines), len(lines)))

    def test_text_escapes_control_characters(self):
        name = self.create("ctl")
        self.ok("send", "--raw", name, stdin=b"a\x01b\nc\x7fd\re")
        self.assertEqual(self.ok("recv", "--count", "1", name).stdout,
                         b"a\\x01b\\x0ac\\x7fd\\x0de\n")

    def test_text_escapes_c1_and_malformed_utf8(self):
        name = self.create("c1")
        # a lone 0x9b and U+009B (both CSI to an 8-bit terminal), a truncated
        # sequence; U+00E9 and U+2713 are text and stay as they are
        self.ok("send", "--raw", name, stdin=b"a\x9bb\xc2\x9bc\xc3\xa9\xe2\x9c\x93\xe2\x9c")
        self.assertEqual(self.ok("recv", "--count", "1", name).stdout,
                         b"a\\x9bb\\xc2\\x9bc\xc3\xa9\xe2\x9c\x93\\xe2\\x9c\n")

    def test_recv_stops_when_the_output_cannot_be_written(self):
        name = self.create("full")
        self.ok("send", name, "-", stdin=b"".join(b"%d\n" % i for i in range(5000)))
        with open("/dev/full", "wb") as full:
            r = subprocess.run([TAKT, "recv", "--timeout", "300ms", name], stdout=full,
                               stderr=subprocess.PIPE, timeout=30)
        err = r.stderr.decode(errors="replace")
        self.assertEqual(r.returncode, RUNTIME, err)
        self.assertIn("cannot write the output", err)
        self.assertEqual(len(err.splitlines()), 1, err)
        # it stopped at the first failed write: the rest is still in the channel
        self.assertLess(self.info(name)["records_out"], 5000)
        with open("/dev/full", "wb") as full:
            r = subprocess.run([TAKT, "stat", "--count", "1", name], stdout=full,
                               stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(r.returncode, RUNTIME, r.stderr.decode(errors="replace"))

    def test_hex_and_json(self):
        name = self.create("hexjson")
        self.ok("send", "--raw", name, stdin=b"AB\x00")
        self.ok("send", name, "")
        self.assertEqual(self.ok("recv", "--hex", "--count", "2", name).stdout, b"414200\n\n")
        self.ok("send", "--type", "42", name, "h\u00e9llo")
        self.ok("send", "--raw", name, stdin=b"\xff\xfe")
        out = self.ok("recv", "--json", "--count", "2", name).stdout.decode()
        first, second = [json.loads(line) for line in out.splitlines()]
        self.assertEqual((first["type"], first["lane"], first["len"]), (42, 0, 6))
        self.assertEqual(first["text"], "h\u00e9llo")
        self.assertEqual(bytes.fromhex(first["hex"]), "h\u00e9llo".encode())
        self.assertEqual(bytes.fromhex(second["hex"]), b"\xff\xfe")
        self.assertNotIn("text", second)

    def test_data_argument_is_one_record(self):
        name = self.create("arg")
        self.ok("send", name, "--", "-dashed data\\n")
        self.assertEqual(self.ok("recv", "--count", "1", name).stdout, b"-dashed data\\n\n")

    def test_recv_timeout(self):
        name = self.create("rtimeout")
        t0 = time.monotonic()
        line = self.fails(TIMEOUT, "recv", "--count", "1", "--timeout", "100ms", name)
        self.assertIn("timed out", line)
        self.assertLess(time.monotonic() - t0, 10)
        # without --count, an idle timeout after some records is the normal end
        self.ok("send", name, stdin=b"one\ntwo\n")
        self.assertEqual(self.ok("recv", "--timeout", "100ms", name).stdout, b"one\ntwo\n")
        self.fails(TIMEOUT, "recv", "--timeout", "50ms", name)

    def test_recv_ends_cleanly_on_sigint(self):
        name = self.create("rsigint")
        recv = self.start_recv(name)
        self.ok("send", name, "before")
        recv.send_signal(signal.SIGINT)
        self.assertEqual(self.finish(recv), b"before\n")

    def test_send_timeout_when_full(self):
        name = self.create("full", "--capacity", "1KiB", "--max-record", "256")
        line = self.fails(TIMEOUT, "send", "--timeout", "100ms", name,
                          stdin=(b"z" * 200 + b"\n") * 100)
        self.assertIn("timed out", line)
        c = self.ls(name)[name]
        self.assertGreater(c["records_in"], 0)
        self.assertLess(c["records_in"], 100)
        self.assertGreater(c["fill_bytes"], 0)
        self.assertGreaterEqual(c["full_events"], 1)

    def test_send_too_large(self):
        name = self.create("large", "--capacity", "1KiB", "--max-record", "256")
        self.assertIn("max record", self.fails(RUNTIME, "send", name, "y" * 257))
        self.assertIn("max record", self.fails(RUNTIME, "send", "--raw", name,
                                               stdin=b"y" * 300))
        self.ok("send", name, "y" * 256)

    def test_busy_endpoints(self):
        name = self.create("busy")
        self.hold("consumer", name, "producer", name)
        self.assertIn("every producer lane", self.fails(BUSY, "send", name, "x"))
        self.assertIn("live consumer", self.fails(BUSY, "recv", "--timeout", "1s", name))


class TestInfo(CliTest):
    def test_lanes_and_consumer(self):
        name = self.create("info", "--lanes", "3", "--capacity", "4KiB")
        holder = self.hold("producer", name)
        self.ok("send", name, stdin=b"12345678\nabc\n")
        i = self.info(name)
        self.assertEqual(i["lanes"], 3)
        lanes = i["lane_stats"]
        self.assertEqual([l["lane"] for l in lanes], [0, 1, 2])
        self.assertTrue(lanes[0]["producer_alive"])
        self.assertEqual(lanes[0]["producer_pid"], holder.pid)
        self.assertFalse(lanes[1]["producer_alive"])  # send closed its lane
        self.assertEqual((lanes[1]["records_sent"], lanes[1]["bytes_sent"]), (2, 11))
        self.assertEqual(lanes[1]["fill_bytes"], lanes[1]["tail"] - lanes[1]["head"])
        self.assertGreater(lanes[1]["fill_bytes"], 0)
        self.assertFalse(any(l["broken"] for l in lanes))
        self.assertEqual(i["consumer"]["alive"], False)
        self.assertFalse(i["stale"])
        for key in ("created", "created_ns", "nonce", "total_size", "layout_major"):
            self.assertIn(key, i)
        self.ok("recv", "--count", "2", name)
        i = self.info(name)
        self.assertEqual(i["lane_stats"][1]["records_received"], 2)
        self.assertEqual(i["consumer"]["alive"], False)
        self.assertIsInstance(i["consumer"]["pid"], int)
        self.assertIsInstance(i["consumer"]["empty_events"], int)

    def test_text(self):
        name = self.create("infotext", "--lanes", "2")
        out = self.ok("info", name).stdout.decode().splitlines()
        self.assertEqual(out[0].split(), ["channel", name])
        header = [n for n, l in enumerate(out) if l.split()[:1] == ["LANE"]]
        self.assertEqual(len(header), 1)
        self.assertEqual(len(out) - header[0] - 1, 2)


class TestStat(CliTest):
    def test_json_samples(self):
        name = self.create("stat")
        self.ok("send", name, stdin=b"r1\nr2\nr3\n")
        t0 = time.monotonic()
        out = self.ok("stat", "--count", "2", "--interval", "100ms", "--json", name).stdout
        self.assertLess(time.monotonic() - t0, 10)
        samples = [json.loads(line) for line in out.decode().splitlines()]
        self.assertEqual(len(samples), 2)
        for n, s in enumerate(samples, 1):
            self.assertEqual(s["name"], name)
            self.assertEqual(s["sample"], n)
            self.assertGreater(s["interval_ns"], 50e6)
            self.assertEqual(s["records_in"], 3)
            for key in ("records_in_per_s", "records_out_per_s", "bytes_in_per_s",
                        "bytes_out_per_s", "full_events_per_s", "empty_events_per_s",
                        "fill_percent"):
                self.assertIsInstance(s[key], (int, float))
            self.assertEqual(s["records_in_per_s"], 0)
            self.assertGreater(s["fill_bytes"], 0)

    def test_text_and_sigint(self):
        name = self.create("stattext")
        out = self.ok("stat", "-c", "2", "-i", "100ms", name).stdout.decode().splitlines()
        self.assertEqual(len(out), 3)
        self.assertEqual(out[0].split()[0], "TIME")
        p = subprocess.Popen([TAKT, "stat", "--interval", "50ms", "--json", name],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(self._stop, p)
        ready, _, _ = select.select([p.stdout], [], [], 20)
        self.assertTrue(ready)
        json.loads(p.stdout.readline())
        p.send_signal(signal.SIGINT)
        rest, err = p.communicate(timeout=20)
        self.assertEqual(p.returncode, OK, err)
        for line in rest.decode().splitlines():
            json.loads(line)


    def test_a_segment_shrinking_under_stat_is_an_error_not_a_crash(self):
        # a peer with write access truncates the file: the next read of a lost
        # page is SIGBUS, which the CLI turns into an error message
        name = self.create("shrink", "--lanes", "4", "--capacity", "4KiB")
        p = subprocess.Popen([TAKT, "stat", "--interval", "50ms", "--json", name],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(self._stop, p)
        ready, _, _ = select.select([p.stdout], [], [], 20)
        self.assertTrue(ready)
        json.loads(p.stdout.readline())  # it has the channel open and sampled it
        os.truncate(f"{SHM}/takt.{name}", 4096)
        _, err = p.communicate(timeout=20)
        self.assertEqual(p.returncode, RUNTIME, err)
        self.assertIn("shrank", err.decode(errors="replace"))


class TestState(CliTest):
    """State channels: create --state, state get/set, ls/info/stat, liveness, gc."""

    IMAGE = bytes(range(256))

    def create_state(self, tag, size="256", *opts):
        return self.create(tag, "--state", "--image-size", size, *opts)

    def entry(self, name):
        return self.ls(name)[name]

    def test_create_set_get_byte_exact(self):
        name = self.create_state("sraw", "256", "--mode", "0660")
        self.assertEqual(stat.S_IMODE(os.stat(f"{SHM}/takt.{name}").st_mode), 0o660)
        self.ok("state", "set", "--raw", name, stdin=self.IMAGE)
        self.assertEqual(self.ok("state", "get", "--raw", name).stdout, self.IMAGE)
        # a shorter image is published with its own length; binary survives
        self.ok("state", "set", "--raw", name, stdin=b"\x00\n\xff")
        self.assertEqual(self.ok("state", "get", "--raw", name).stdout, b"\x00\n\xff")
        self.ok("state", "set", "--hex", name, "00 01 fe ff")
        self.assertEqual(self.ok("state", "get", "--hex", name).stdout, b"0001feff\n")
        self.ok("state", "set", name, "h\u00e9llo")
        doc = json.loads(self.ok("state", "get", "--json", name).stdout)
        self.assertEqual((doc["name"], doc["generation"], doc["len"]), (name, 4, 6))
        self.assertEqual(doc["text"], "h\u00e9llo")
        self.assertEqual(bytes.fromhex(doc["hex"]), "h\u00e9llo".encode())
        self.assertIsInstance(doc["age_ns"], int)
        self.assertIsInstance(doc["written_ns"], int)
        # default output: a hexdump -C style dump ending with the length
        dump = self.ok("state", "get", name).stdout.decode().splitlines()
        self.assertEqual(dump[-1], "00000006")
        self.assertTrue(dump[0].startswith("00000000  68 c3 a9 6c 6c 6f"), dump[0])
        # stdin lines are published in turn: the last one is the newest
        self.ok("state", "set", name, stdin=b"first\nsecond\n")
        self.assertEqual(self.ok("state", "get", "--raw", name).stdout, b"second")
        self.assertEqual(self.entry(name)["writes"], 6)

    def test_set_too_large_and_bad_hex(self):
        name = self.create_state("sbig", "16")
        self.assertIn("image size", self.fails(RUNTIME, "state", "set", name, "y" * 17))
        self.assertIn("image size", self.fails(RUNTIME, "state", "set", "--raw", name,
                                               stdin=b"y" * 17))
        self.assertIn("hex", self.fails(USAGE, "state", "set", "--hex", name, "0g"))
        self.assertEqual(self.entry(name)["writes"], 0)
        self.ok("state", "set", name, "y" * 16)
        self.assertEqual(self.ok("state", "get", "--raw", name).stdout, b"y" * 16)

    def test_ls_json_fields(self):
        name = self.create_state("sls", "256")
        c = self.entry(name)
        self.assertEqual(c["kind"], "state")
        self.assertEqual((c["image_size"], c["writes"], c["reads"]), (256, 0, 0))
        self.assertEqual((c["writer_alive"], c["reader_alive"]), (False, False))
        self.assertIsNone(c["last_write_age_ns"])
        self.assertTrue(c["stale"])
        for queue_only in ("lanes", "capacity", "fill_bytes", "records_in", "consumer_alive"):
            self.assertNotIn(queue_only, c)
        self.ok("state", "set", name, "x")
        self.ok("state", "get", name)
        c = self.entry(name)
        self.assertEqual((c["writes"], c["reads"]), (1, 1))
        self.assertGreaterEqual(c["last_write_age_ns"], 0)
        self.assertLess(c["last_write_age_ns"], 600e9)
        self.assertGreaterEqual(c["age_ns"], c["last_write_age_ns"] - 1e9)
        holder = self.hold("state-writer", name)
        c = self.entry(name)
        self.assertEqual((c["writer_alive"], c["reader_alive"], c["stale"]), (True, False, False))
        self.assertEqual((c["writer_pid"], c["writes"]), (holder.pid, 2))
        # queue channels are listed alongside, unchanged
        q = self.create("sls-queue")
        both = self.ls(name, q)
        self.assertEqual((both[name]["kind"], both[q]["kind"]), ("state", "queue"))
        self.assertIn("lanes", both[q])
        table = self.ok("ls", name, q).stdout.decode().splitlines()
        headers = [l.split() for l in table if l.startswith("NAME")]
        self.assertEqual(len(headers), 2)
        self.assertIn("IMAGE", headers[1])
        state_rows = [l.split() for l in table if l.startswith(name)]
        self.assertEqual(state_rows[0][1:3], ["state", "256"])

    def test_info_json(self):
        name = self.create_state("sinfo", "1KiB")
        reader = self.hold("state-reader", name)
        writer = self.hold("state-writer", name)
        i = self.info(name)
        self.assertEqual((i["name"], i["kind"], i["image_size"]), (name, "state", 1024))
        for key in ("created", "created_ns", "nonce", "total_size", "layout_major",
                    "layout_minor"):
            self.assertIn(key, i)
        self.assertGreaterEqual(i["total_size"], 3 * 1024)
        w, r = i["writer"], i["reader"]
        self.assertEqual((w["pid"], w["alive"]), (writer.pid, True))
        self.assertEqual((r["pid"], r["alive"]), (reader.pid, True))
        self.assertGreater(w["start_ticks"], 0)
        self.assertIsInstance(w["started_ns"], int)
        self.assertLess(abs(w["started_ns"] - time.time_ns()), 600e9)
        self.assertIsInstance(w["last_write_age_ns"], int)
        self.assertIsInstance(r["last_read_age_ns"], int)
        self.assertEqual((i["writes"], i["writer_alive"], i["reader_alive"], i["stale"]),
                         (1, True, True, False))
        text = self.ok("info", name).stdout.decode().splitlines()
        self.assertEqual(text[0].split(), ["channel", name])
        self.assertEqual(text[1].split()[:2], ["kind", "state"])

    def test_stat_json(self):
        name = self.create_state("sstat")
        self.ok("state", "set", name, "a")
        out = self.ok("stat", "--count", "2", "--interval", "100ms", "--json", name).stdout
        samples = [json.loads(line) for line in out.decode().splitlines()]
        self.assertEqual([s["sample"] for s in samples], [1, 2])
        for s in samples:
            self.assertEqual((s["name"], s["kind"], s["writes"], s["reads"]), (name, "state", 1, 0))
            self.assertEqual((s["writes_per_s"], s["reads_per_s"]), (0, 0))
            self.assertIsInstance(s["last_write_age_ns"], int)
        text = self.ok("stat", "-c", "1", "-i", "50ms", name).stdout.decode().splitlines()
        self.assertEqual(text[0].split()[:3], ["TIME", "WRITES/s", "READS/s"])
        self.assertEqual(len(text), 2)

    def test_get_timeouts(self):
        name = self.create_state("stimeout")
        self.assertIn("no image", self.fails(TIMEOUT, "state", "get", name))
        self.assertIn("no image", self.fails(TIMEOUT, "state", "get", "--timeout", "50ms", name))
        self.ok("state", "set", name, "one")
        t0 = time.monotonic()
        line = self.fails(TIMEOUT, "state", "get", "--newer", "--timeout", "100ms", name)
        self.assertIn("timed out", line)
        self.assertIn("generation 1", line)
        self.assertLess(time.monotonic() - t0, 10)
        # the channel is still readable and untouched by the failed wait
        self.assertEqual(self.ok("state", "get", "--raw", name).stdout, b"one")

    def test_get_newer_sees_another_process_publish(self):
        name = self.create_state("snewer")
        self.ok("state", "set", name, "old")
        p = subprocess.Popen([TAKT, "state", "get", "--newer", "--json", "--timeout", "20s",
                              name], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(self._stop, p)
        deadline = time.monotonic() + 20
        while not self.entry(name)["reader_alive"]:
            self.assertIsNone(p.poll(), "state get exited early")
            self.assertLess(time.monotonic(), deadline, "state get never opened the reader")
            time.sleep(0.01)
        # Publish until it has taken one: the first may land before get has
        # read the image it must see a newer one than.
        published = []
        while p.poll() is None and time.monotonic() < deadline:
            published.append(f"new-{len(published)}")
            self.ok("state", "set", name, published[-1])
            time.sleep(0.05)
        out, err = p.communicate(timeout=20)
        self.assertEqual(p.returncode, OK, err.decode(errors="replace"))
        doc = json.loads(out)
        self.assertIn(doc["text"], published)
        self.assertGreaterEqual(doc["generation"], 2)
        self.assertEqual(doc["generation"], 2 + published.index(doc["text"]))

    def test_busy_reader_and_writer(self):
        name = self.create_state("sbusy")
        self.hold("state-reader", name, "state-writer", name)
        self.assertIn("live reader", self.fails(BUSY, "state", "get", name))
        self.assertIn("live writer", self.fails(BUSY, "state", "set", name, "x"))
        self.assertIn("live endpoint", self.fails(BUSY, "rm", name))

    def test_killed_writer_is_stale_and_gc_removes_it(self):
        name = self.create_state("sstale")
        holder = self.hold("state-writer", name)
        c = self.entry(name)
        self.assertEqual((c["writer_alive"], c["writes"], c["stale"]), (True, 1, False))
        self.assertEqual(self.ok("gc", name).stdout, b"")
        self.assertTrue(self.exists(name))
        holder.kill()
        holder.wait(timeout=20)
        c = self.entry(name)
        self.assertEqual((c["writer_alive"], c["reader_alive"], c["stale"]), (False, False, True))
        self.assertEqual(c["writer_pid"], holder.pid)
        # the last image survives its writer
        self.assertEqual(self.ok("state", "get", "--raw", name).stdout, b"hello")
        self.assertIn("stale", self.ok("ls", name).stdout.decode().splitlines()[1].split())
        self.assertEqual(self.ok("gc", name).stdout.decode(), f"removed {name}\n")
        self.assertEqual(self.ls(name), {})
        self.assertEqual(shm_objects(name), [], "segment or semaphores left behind")

    def test_rm_state(self):
        name = self.create_state("srm")
        self.assertEqual(self.ok("rm", "-v", name).stdout.decode(), f"removed {name}\n")
        self.assertEqual(shm_objects(name), [])

    def test_wrong_kind(self):
        state = self.create_state("skind")
        queue = self.create("skind-queue")
        self.assertIn("state channel", self.fails(RUNTIME, "send", state, "x"))
        self.assertIn("state channel", self.fails(RUNTIME, "recv", "--timeout", "10ms", state))
        self.assertIn("not a state channel", self.fails(RUNTIME, "state", "get", queue))
        self.assertIn("not a state channel", self.fails(RUNTIME, "state", "set", queue, "x"))
        self.fails(NOTFOUND, "state", "get", self.new_name("smissing"))

    def test_usage_errors(self):
        cases = [
            (["--state"], "--image-size"),
            (["--image-size", "256"], "--state"),
            (["--state", "--image-size", "256", "--lanes", "2"], "--lanes"),
            (["--state", "--image-size", "256", "--capacity", "4KiB"], "--capacity"),
            (["--state", "--image-size", "0"], "--image-size"),
            (["--state", "--image-size", "65MiB"], "--image-size"),
            (["--state", "--image-size", "1KB"], "--image-size"),
        ]
        for opts, word in cases:
            with self.subTest(opts=opts):
                name = self.new_name("sbad")
                self.assertIn(word, self.fails(USAGE, "create", *opts, name))
                self.assertEqual(shm_objects(name), [])
        name = self.create_state("susage")
        self.assertIn("get or set", self.fails(USAGE, "state"))
        self.assertIn("get or set", self.fails(USAGE, "state", "frob", name))
        self.assertIn('takt: state get: unknown option "--frob"',
                      self.fails(USAGE, "state", "get", "--frob", name))
        self.assertIn("exclude", self.fails(USAGE, "state", "get", "--hex", "--raw", name))
        self.assertIn("--timeout", self.fails(USAGE, "state", "get", "--timeout", "x", name))
        self.assertIn("stdin", self.fails(USAGE, "state", "set", "--raw", name, "data"))
        self.assertIn("invalid name", self.fails(USAGE, "state", "get", "a/b"))
        for sub in ("get", "set"):
            self.assertEqual(self.ok("state", sub, "--help").stdout,
                             self.ok("state", "--help").stdout)


class TestBench(CliTest):
    def test_execs_sibling_takt_bench(self):
        d = tempfile.mkdtemp(prefix=f"tc-{PID}-bench")
        self.addCleanup(shutil.rmtree, d)
        takt = os.path.join(d, "takt")
        shutil.copy(TAKT, takt)
        bench = os.path.join(d, "takt-bench")
        with open(bench, "w") as f:
            f.write('#!/bin/sh\necho "argv0=$(basename "$0") args=$*"\nexit 7\n')
        os.chmod(bench, 0o755)
        env = dict(os.environ, PATH="/usr/bin:/bin")
        env.pop("TAKT_BENCH", None)
        r = run("bench", "--foo", "bar baz", prog=takt, env=env)
        self.assertEqual(r.returncode, 7)
        self.assertEqual(r.stdout, b"argv0=takt-bench args=--foo bar baz\n")

    def test_missing_takt_bench(self):
        d = tempfile.mkdtemp(prefix=f"tc-{PID}-nobench")
        self.addCleanup(shutil.rmtree, d)
        takt = os.path.join(d, "takt")
        shutil.copy(TAKT, takt)
        env = dict(os.environ, PATH=d)
        env.pop("TAKT_BENCH", None)
        line = self.fails(RUNTIME, "bench", "--x", prog=takt, env=env)
        self.assertIn("takt-bench", line)
        self.assertIn("not found", line)
        r = run("bench", "--help", prog=takt, env=env)
        self.assertEqual(r.returncode, OK)
        self.assertTrue(r.stdout.decode().startswith("Usage: takt bench"))


if __name__ == "__main__":
    unittest.main()
