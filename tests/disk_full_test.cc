// The collector's disk fills up while two agents keep sending: ingestion pauses with a clear
// error, the agents are told to retry and back off, an agent restarted meanwhile resumes from
// its checkpoint, and once space is freed every line arrives, exactly once.
//
// The full disk is real where the test may mount: it unshares its mount namespace, makes /
// private and mounts a small tmpfs on the collector's data directory (children inherit it),
// then fills it with a filler file and deletes the filler to free space. Where mounting is
// not permitted (CI without privileges) the collector runs in this process and its writer is
// failed with the error SQLite gives for a full disk (ServerOptions::append_fault). The mode
// that ran is printed and recorded as the test property "mode"; neither is skipped.
#include <sched.h>
#include <sys/mount.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "collector/server.h"
#include "gtest/gtest.h"
#include "spdlog/sinks/basic_file_sink.h"
#include "spdlog/spdlog.h"
#include "tests/ingest_harness.h"

namespace maillens::ingest_test {
namespace {

using Clock = std::chrono::steady_clock;

void Pause(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// A private mount namespace for this process (its children inherit it) and a tmpfs of
// `size` on `dir`. False, with the reason in *why, when this process may not do that.
bool MountSmallTmpfs(const std::string& dir, const std::string& size, std::string* why) {
  if (unshare(CLONE_NEWNS) != 0) {
    *why = std::string("unshare(CLONE_NEWNS): ") + std::strerror(errno);
    return false;
  }
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    *why = std::string("making / private: ") + std::strerror(errno);
    return false;
  }
  std::string options = "size=" + size + ",mode=0755";
  if (mount("tmpfs", dir.c_str(), "tmpfs", 0, options.c_str()) != 0) {
    *why = std::string("mount tmpfs: ") + std::strerror(errno);
    return false;
  }
  return true;
}

// Writes a file in `dir` until the file system refuses (ENOSPC); returns the bytes written.
uint64_t FillUp(const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return 0;
  std::string chunk(1 << 20, 'x');
  uint64_t total = 0;
  // Big chunks first, then smaller ones to take the last pages too.
  for (size_t size = chunk.size(); size >= 512; size /= 4) {
    while (true) {
      ssize_t n = write(fd, chunk.data(), size);
      if (n <= 0) break;
      total += static_cast<uint64_t>(n);
    }
  }
  fsync(fd);
  close(fd);
  return total;
}

// Waits until `text()` contains `needle` or the deadline passes.
template <typename F>
bool WaitForText(F text, const std::string& needle, Clock::time_point deadline) {
  while (text().find(needle) == std::string::npos) {
    if (Clock::now() >= deadline) return false;
    Pause(100);
  }
  return true;
}

// The acknowledged position of every file in an agent's checkpoint: fingerprint -> offset
// (see agent/checkpoint.h: "file STATE DEVICE INODE FINGERPRINT OFFSET ...").
std::map<std::string, std::string> AckedOffsets(const std::string& state_dir) {
  std::map<std::string, std::string> out;
  std::istringstream in(ReadText(state_dir + "/tailer.checkpoint"));
  std::string word, state, device, inode, fingerprint, offset;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    if (fields >> word >> state >> device >> inode >> fingerprint >> offset && word == "file") {
      out[fingerprint] = offset;
    }
  }
  return out;
}

TEST(DiskFullTest, IngestionPausesWhileFullAndEverythingArrivesAfterSpaceIsFreed) {
  fs::path dir = fs::temp_directory_path() / ("maillens_disk_full_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "data");
  const std::string data = (dir / "data").string();
  const std::string collector_log = (dir / "collector.log").string();
  const int port = FreePort();

  std::string why_not;
  const bool tmpfs = MountSmallTmpfs(data, "16m", &why_not);
  const char* mode = tmpfs ? "tmpfs" : "injected";
  std::printf("disk-full mode: %s%s\n", mode,
              tmpfs ? " (16 MiB tmpfs on the data directory)"
                    : (" (cannot mount: " + why_not + "; the writer is failed instead)").c_str());
  RecordProperty("mode", mode);

  // The collector: a process on the tmpfs, or in this process with the injected failure.
  std::atomic<bool> injected_full{false};
  Child collector_process("maillens-collector",
                          {"--config", WriteCollectorConfig(dir.string(), port, data)},
                          collector_log);
  std::unique_ptr<collector::CollectorServer> collector_in_process;
  if (tmpfs) {
    collector_process.Start();
  } else {
    collector::ServerOptions options;
    options.listen = "127.0.0.1:" + std::to_string(port);
    options.data_dir = data;
    auto logger = std::make_shared<spdlog::logger>(
        "collector", std::make_shared<spdlog::sinks::basic_file_sink_mt>(collector_log));
    logger->flush_on(spdlog::level::info);
    options.logger = logger;
    options.append_fault = [&]() -> absl::Status {
      // SQLITE_FULL's message, mapped as store/sqlite.cc maps it.
      if (injected_full) return absl::ResourceExhaustedError("database or disk is full");
      return absl::OkStatus();
    };
    auto server = collector::CollectorServer::Start(std::move(options));
    ASSERT_TRUE(server.ok()) << server.status();
    collector_in_process = *std::move(server);
  }
  auto collector_text = [&] { return ReadText(collector_log); };

  MailLog log1((dir / "mx1").string(), "mx1");
  MailLog log2((dir / "mx2").string(), "mx2");
  AgentChild agent1(dir.string(), port, "mx1", log1.live(), 500);
  AgentChild agent2(dir.string(), port, "mx2", log2.live(), 500);
  agent1.Start();
  agent2.Start();

  // Some lines arrive while there is space.
  for (int i = 0; i < 200; ++i) {
    log1.AppendMessage();
    log2.AppendMessage();
  }
  uint64_t before = log1.written().size() + log2.written().size();
  ASSERT_EQ(WaitForStored(data, before, Clock::now() + std::chrono::seconds(20)), before)
      << collector_text();

  // The disk fills; the hosts keep logging.
  const std::string filler = data + "/filler";
  if (tmpfs) {
    uint64_t filled = FillUp(filler);
    std::printf("filler: %llu bytes\n", static_cast<unsigned long long>(filled));
    ASSERT_GT(filled, 0u);
  } else {
    injected_full = true;
  }
  std::atomic<bool> writing{true};
  std::thread writer([&] {  // about 250 lines a second per host
    while (writing) {
      log1.AppendMessage();
      log2.AppendMessage();
      Pause(20);
    }
  });
  Clock::time_point deadline = Clock::now() + std::chrono::seconds(20);
  EXPECT_TRUE(WaitForText(collector_text, "disk is full", deadline))
      << "the collector did not say the disk is full:\n"
      << collector_text();
  EXPECT_TRUE(WaitForText([&] { return agent1.Log(); }, "collector asks to retry", deadline))
      << agent1.Log();
  EXPECT_TRUE(WaitForText([&] { return agent2.Log(); }, "collector asks to retry", deadline))
      << agent2.Log();
  absl::StatusOr<uint64_t> paused_at = CountStored(data);
  ASSERT_TRUE(paused_at.ok()) << paused_at.status();
  const std::string state1 = (dir / "state-mx1").string(), state2 = (dir / "state-mx2").string();
  std::map<std::string, std::string> acked1 = AckedOffsets(state1);
  std::map<std::string, std::string> acked2 = AckedOffsets(state2);
  EXPECT_FALSE(acked1.empty());
  EXPECT_FALSE(acked2.empty());

  // An agent restarted while the disk is full goes on from its checkpoint, which holds only
  // what was stored.
  EXPECT_TRUE(agent1.KillHard());
  agent1.Start();
  Pause(1000);
  writing = false;
  writer.join();
  absl::StatusOr<uint64_t> still = CountStored(data);
  ASSERT_TRUE(still.ok()) << still.status();
  EXPECT_EQ(*still, *paused_at) << "lines were stored while the disk was full";
  EXPECT_EQ(AckedOffsets(state1), acked1) << "a checkpoint moved while nothing was stored";
  EXPECT_EQ(AckedOffsets(state2), acked2) << "a checkpoint moved while nothing was stored";
  uint64_t total = log1.written().size() + log2.written().size();
  EXPECT_LT(*still, total);

  // Space is freed: everything arrives.
  if (tmpfs) {
    ASSERT_TRUE(fs::remove(filler));
  } else {
    injected_full = false;
  }
  Clock::time_point freed = Clock::now();
  uint64_t stored = WaitForStored(data, total, freed + std::chrono::seconds(40));
  std::printf(
      "wrote %llu lines; %llu stored when the disk filled; all %llu after %.1f s once "
      "freed\n",
      static_cast<unsigned long long>(total), static_cast<unsigned long long>(*paused_at),
      static_cast<unsigned long long>(stored),
      std::chrono::duration<double>(Clock::now() - freed).count());
  EXPECT_EQ(stored, total);
  EXPECT_TRUE(agent1.Running()) << agent1.Log();
  EXPECT_TRUE(agent2.Running()) << agent2.Log();

  int st1 = agent1.Stop();
  int st2 = agent2.Stop();
  EXPECT_TRUE(WIFEXITED(st1) && WEXITSTATUS(st1) == 0) << st1;
  EXPECT_TRUE(WIFEXITED(st2) && WEXITSTATUS(st2) == 0) << st2;
  if (tmpfs) {
    EXPECT_TRUE(collector_process.Running()) << collector_text();
    int stc = collector_process.Stop();
    EXPECT_TRUE(WIFEXITED(stc) && WEXITSTATUS(stc) == 0) << stc;
  } else {
    collector_in_process->Shutdown(absl::Seconds(5));
    collector_in_process.reset();
  }

  LineCounts written = CountWritten(log1);
  for (const auto& [key, n] : CountWritten(log2)) written[key] += n;
  absl::StatusOr<LineCounts> in_store = ReadStored(data);
  ASSERT_TRUE(in_store.ok()) << in_store.status();
  int missing = 0, extra = 0;
  std::string diff = Compare(written, *in_store, &missing, &extra);
  EXPECT_EQ(missing, 0) << diff;
  EXPECT_EQ(extra, 0) << diff;
  if (HasFailure()) {
    std::printf("--- collector\n%s--- agent mx1\n%s--- agent mx2\n%s", collector_text().c_str(),
                agent1.Log().c_str(), agent2.Log().c_str());
  }
  if (tmpfs) umount2(data.c_str(), MNT_DETACH);
  if (!HasFailure()) fs::remove_all(dir);
}

}  // namespace
}  // namespace maillens::ingest_test
