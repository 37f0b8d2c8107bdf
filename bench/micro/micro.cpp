// SPDX-License-Identifier: MIT
//
// takt-bench-micro - per-call costs of the takt hot path in one process and
// one thread (Google Benchmark).  Producer and consumer share the thread, so
// every record stays in this core's L1: these are instruction costs, not
// cross-core transfer costs (those are what takt-bench-core measures).
//
//   SendRecv/<size>            takt_try_send + takt_try_recv, one record
//   ReserveCommit/<size>       takt_reserve + takt_commit + takt_peek + takt_release
//   Batch32/<size>             takt_try_send_batch(32) + takt_try_recv_batch(32),
//                              items/s counts records
//   EmptyPoll                  takt_try_recv on an empty channel
//   FullSend                   takt_try_send of 64 bytes refused by a full
//                              channel (a sender spinning on a full ring)
//   LaneStatsGet               takt_lane_stats_get
//   StateWrite/<size>          takt_state_write of a <size>-byte image (issue 9)
//   StateWriteRead/<size>      takt_state_write + takt_state_read of that fresh
//                              image; a fresh read = StateWriteRead - StateWrite
//                              (PauseTiming around the write would cost more
//                              than the read itself)
//   StateReadStale/<size>      takt_state_read when nothing new was published
//                              (a poller's common case: still copies the image)
//   RingSendRecv/<size>        the minimal ring of mech_ring.c, for comparison
//
// Output: the usual table; --benchmark_format=json for JSON.

#include <benchmark/benchmark.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <unistd.h>

#include <takt.h>

#include "mech.h"

namespace {

constexpr uint64_t kCapacity = 1u << 16;

// One SPSC channel with both endpoints in this thread; unlinked at the end.
class Channel {
public:
	explicit Channel(uint32_t max_record)
	{
		static unsigned counter;
		name_ = "takt-micro." + std::to_string(getpid()) + "." + std::to_string(counter++);
		takt_queue_config cfg{};
		cfg.capacity = kCapacity;
		cfg.lanes = 1;
		cfg.max_record = max_record;
		cfg.mode = 0600;
		check(takt_queue_create(name_.c_str(), &cfg), "takt_queue_create");
		check(takt_producer_open(name_.c_str(), &p_), "takt_producer_open");
		check(takt_consumer_open(name_.c_str(), &c_), "takt_consumer_open");
	}
	~Channel()
	{
		if (p_)
			takt_producer_close(p_);
		if (c_)
			takt_consumer_close(c_);
		takt_unlink(name_.c_str());
	}
	Channel(const Channel &) = delete;
	Channel &operator=(const Channel &) = delete;

	takt_producer *p() const { return p_; }
	takt_consumer *c() const { return c_; }

	static void check(int rc, const char *what)
	{
		if (rc < 0) {
			std::fprintf(stderr, "%s: %s\n", what, takt_strerror(rc));
			std::exit(1);
		}
	}

private:
	std::string name_;
	takt_producer *p_ = nullptr;
	takt_consumer *c_ = nullptr;
};

void SendRecv(benchmark::State &state)
{
	const size_t size = static_cast<size_t>(state.range(0));
	Channel ch(static_cast<uint32_t>(size));
	std::vector<unsigned char> in(size, 0x5a), out(size);
	for (auto _ : state) {
		int s = takt_try_send(ch.p(), 1, in.data(), size);
		int r = takt_try_recv(ch.c(), out.data(), out.size(), nullptr);
		benchmark::DoNotOptimize(s);
		benchmark::DoNotOptimize(r);
		if (s != 0 || r != static_cast<int>(size)) {
			state.SkipWithError("send/recv failed");
			break;
		}
	}
	state.SetItemsProcessed(state.iterations());
	state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(size));
}

void ReserveCommit(benchmark::State &state)
{
	const size_t size = static_cast<size_t>(state.range(0));
	Channel ch(static_cast<uint32_t>(size));
	for (auto _ : state) {
		void *slot = nullptr;
		int s = takt_reserve(ch.p(), size, &slot);
		if (s == 0) {
			std::memset(slot, 0x5a, size < 8 ? size : 8); // touch it, as a writer would
			s = takt_commit(ch.p(), 1, size);
		}
		takt_msg m{};
		int r = takt_peek(ch.c(), &m);
		benchmark::DoNotOptimize(m.data);
		int rel = takt_release(ch.c());
		if (s != 0 || r != static_cast<int>(size) || rel != 0) {
			state.SkipWithError("reserve/commit/peek/release failed");
			break;
		}
	}
	state.SetItemsProcessed(state.iterations());
	state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(size));
}

void Batch32(benchmark::State &state)
{
	const size_t size = static_cast<size_t>(state.range(0));
	constexpr unsigned kBatch = 32;
	Channel ch(static_cast<uint32_t>(size));
	const size_t stride = (size + 7) & ~size_t(7);
	std::vector<unsigned char> in(stride * kBatch, 0x5a), out(stride * kBatch);
	takt_msg send[kBatch]{}, recv[kBatch]{};
	for (unsigned i = 0; i < kBatch; i++) {
		send[i].data = in.data() + i * stride;
		send[i].len = static_cast<uint32_t>(size);
		send[i].type = 1;
	}
	for (auto _ : state) {
		int s = takt_try_send_batch(ch.p(), send, kBatch);
		int r = takt_try_recv_batch(ch.c(), recv, kBatch, out.data(), out.size());
		benchmark::DoNotOptimize(r);
		if (s != static_cast<int>(kBatch) || r != static_cast<int>(kBatch)) {
			state.SkipWithError("batch send/recv failed");
			break;
		}
	}
	state.SetItemsProcessed(state.iterations() * kBatch);
	state.SetBytesProcessed(state.iterations() * kBatch * static_cast<int64_t>(size));
	state.counters["ns_per_record"] = benchmark::Counter(
		static_cast<double>(state.iterations() * kBatch),
		benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void EmptyPoll(benchmark::State &state)
{
	Channel ch(64);
	unsigned char buf[64];
	for (auto _ : state) {
		int r = takt_try_recv(ch.c(), buf, sizeof(buf), nullptr);
		benchmark::DoNotOptimize(r);
		if (r != -EAGAIN) {
			state.SkipWithError("empty channel returned a record");
			break;
		}
	}
}

void FullSend(benchmark::State &state)
{
	Channel ch(64);
	unsigned char buf[64] = {};
	// 100 records through first: the ring then fills up mid-lane, where
	// a streaming sender meets it, not at the end of the data area (where
	// the next record would need padding first).
	for (int i = 0; i < 100; i++) {
		Channel::check(takt_try_send(ch.p(), 1, buf, sizeof(buf)), "takt_try_send");
		Channel::check(takt_try_recv(ch.c(), buf, sizeof(buf), nullptr), "takt_try_recv");
	}
	// an empty poll: the consumer releases its head (it owes 8000 bytes,
	// less than its step of capacity / 8)
	if (takt_try_recv(ch.c(), buf, sizeof(buf), nullptr) != -EAGAIN)
		std::abort();
	while (takt_try_send(ch.p(), 1, buf, sizeof(buf)) == 0) {
	}
	for (auto _ : state) {
		int r = takt_try_send(ch.p(), 1, buf, sizeof(buf));
		benchmark::DoNotOptimize(r);
		if (r != -EAGAIN) {
			state.SkipWithError("a full channel took a record");
			break;
		}
	}
}

void LaneStatsGet(benchmark::State &state)
{
	Channel ch(64);
	takt_channel *chan = takt_producer_channel(ch.p());
	takt_lane_stats st{};
	for (auto _ : state) {
		int r = takt_lane_stats_get(chan, 0, &st);
		benchmark::DoNotOptimize(r);
		benchmark::DoNotOptimize(st);
	}
}

// One state channel with its writer and reader in this thread.
class StateChannel {
public:
	explicit StateChannel(uint32_t size)
	{
		static unsigned counter;
		name_ = "takt-micro-state." + std::to_string(getpid()) + "." + std::to_string(counter++);
		takt_state_config cfg{};
		cfg.image_size = size;
		cfg.mode = 0600;
		Channel::check(takt_state_create(name_.c_str(), &cfg), "takt_state_create");
		Channel::check(takt_state_writer_open(name_.c_str(), &w_), "takt_state_writer_open");
		Channel::check(takt_state_reader_open(name_.c_str(), &r_), "takt_state_reader_open");
	}
	~StateChannel()
	{
		if (w_)
			takt_state_writer_close(w_);
		if (r_)
			takt_state_reader_close(r_);
		takt_unlink(name_.c_str());
	}
	StateChannel(const StateChannel &) = delete;
	StateChannel &operator=(const StateChannel &) = delete;
	takt_state_writer *w() const { return w_; }
	takt_state_reader *r() const { return r_; }

private:
	std::string name_;
	takt_state_writer *w_ = nullptr;
	takt_state_reader *r_ = nullptr;
};

void StateWrite(benchmark::State &state)
{
	const size_t size = static_cast<size_t>(state.range(0));
	StateChannel ch(static_cast<uint32_t>(size));
	std::vector<unsigned char> img(size, 0x5a);
	for (auto _ : state) {
		int rc = takt_state_write(ch.w(), img.data(), size);
		benchmark::DoNotOptimize(rc);
		if (rc != 0) {
			state.SkipWithError("takt_state_write failed");
			break;
		}
	}
	state.SetItemsProcessed(state.iterations());
	state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(size));
}

void StateWriteRead(benchmark::State &state)
{
	const size_t size = static_cast<size_t>(state.range(0));
	StateChannel ch(static_cast<uint32_t>(size));
	std::vector<unsigned char> img(size, 0x5a), out(size);
	for (auto _ : state) {
		int w = takt_state_write(ch.w(), img.data(), size);
		takt_state_info info{};
		int r = takt_state_read(ch.r(), out.data(), out.size(), &info);
		benchmark::DoNotOptimize(r);
		if (w != 0 || r != static_cast<int>(size) || !info.fresh) {
			state.SkipWithError("state write/read failed");
			break;
		}
	}
	state.SetItemsProcessed(state.iterations());
	state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(size));
}

// A read when nothing new was published (a poller's common case).
void StateReadStale(benchmark::State &state)
{
	const size_t size = static_cast<size_t>(state.range(0));
	StateChannel ch(static_cast<uint32_t>(size));
	std::vector<unsigned char> img(size, 0x5a), out(size);
	Channel::check(takt_state_write(ch.w(), img.data(), size), "takt_state_write");
	for (auto _ : state) {
		takt_state_info info{};
		int r = takt_state_read(ch.r(), out.data(), out.size(), &info);
		benchmark::DoNotOptimize(r);
		if (r != static_cast<int>(size)) {
			state.SkipWithError("state read failed");
			break;
		}
	}
	state.SetItemsProcessed(state.iterations());
}

// The same pair through the minimal fixed-slot ring of bench/mech_ring.c
// (both ends in this process, called through its table like the harness
// does): the floor for what a shared-memory ring must do per record.
void RingSendRecv(benchmark::State &state)
{
	const size_t size = static_cast<size_t>(state.range(0));
	const bench_mech *m = bench_mech_find("ring");
	bench_params p{};
	p.size = size;
	p.capacity = kCapacity;
	p.batch = 1;
	void *st = nullptr, *tx = nullptr, *rx = nullptr;
	if (m->setup(&p, &st) < 0 || m->open(st, &p, ROLE_PRODUCER, &tx) < 0 ||
	    m->open(st, &p, ROLE_CONSUMER, &rx) < 0) {
		state.SkipWithError("ring setup failed");
		return;
	}
	std::vector<unsigned char> in(size, 0x5a), out(size);
	for (auto _ : state) {
		int s = m->try_send(tx, in.data(), size);
		int r = m->try_recv(rx, out.data(), out.size());
		benchmark::DoNotOptimize(s);
		benchmark::DoNotOptimize(r);
	}
	m->close(tx);
	m->close(rx);
	m->teardown(st);
	state.SetItemsProcessed(state.iterations());
}

} // namespace

BENCHMARK(RingSendRecv)->Arg(8)->Arg(64)->Arg(256)->Arg(1024);
BENCHMARK(SendRecv)->Arg(8)->Arg(64)->Arg(256)->Arg(1024);
BENCHMARK(ReserveCommit)->Arg(8)->Arg(64)->Arg(256)->Arg(1024);
BENCHMARK(Batch32)->Arg(8)->Arg(64)->Arg(256)->Arg(1024);
BENCHMARK(EmptyPoll);
BENCHMARK(FullSend);
BENCHMARK(LaneStatsGet);
BENCHMARK(StateWrite)->Arg(8)->Arg(64)->Arg(256)->Arg(1024)->Arg(4096);
BENCHMARK(StateWriteRead)->Arg(8)->Arg(64)->Arg(256)->Arg(1024)->Arg(4096);
BENCHMARK(StateReadStale)->Arg(8)->Arg(64)->Arg(256)->Arg(1024)->Arg(4096);

BENCHMARK_MAIN();
