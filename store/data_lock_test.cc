#include "store/data_lock.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace maillens::store {
namespace {

class TempDir {
 public:
  TempDir() {
    std::string pattern = ::testing::TempDir() + "maillens_lock_XXXXXX";
    char* made = mkdtemp(pattern.data());
    EXPECT_NE(made, nullptr);
    path_ = pattern;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

TEST(DataLockTest, HolderWritesItsNameAndPidAndASecondWriterIsToldWho) {
  TempDir dir;
  const std::string data = dir.path() + "/data";  // not there yet: Acquire makes it
  auto first = DataLock::Acquire(data, "maillens import");
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string me = absl::StrCat("maillens import (pid ", getpid(), ")");
  EXPECT_EQ(ReadAll(DataLockPath(data)), me + "\n");

  // flock conflicts between open files, even in one process.
  auto second = DataLock::Acquire(data, "maillens-collector");
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(second.status())) << second.status();
  EXPECT_NE(second.status().message().find(me), std::string::npos) << second.status();
  // The refused writer left the holder's name alone.
  EXPECT_EQ(ReadAll(DataLockPath(data)), me + "\n");

  first->reset();
  EXPECT_EQ(ReadAll(DataLockPath(data)), "");  // released: no name left behind
  auto third = DataLock::Acquire(data, "maillens-collector");
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(ReadAll(DataLockPath(data)), absl::StrCat("maillens-collector (pid ", getpid(), ")\n"));
}

// Another process holds it, then dies by SIGKILL: the kernel releases the lock, and the next
// writer replaces the name the dead one left.
TEST(DataLockTest, AnotherProcessHoldsItUntilKilled) {
  TempDir dir;
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Gone with the test, whatever path it takes out.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(ready[0]);
    auto lock = DataLock::Acquire(dir.path(), "maillens-collector");
    char c = lock.ok() ? 'y' : 'n';
    (void)!write(ready[1], &c, 1);
    pause();
    _exit(0);
  }
  close(ready[1]);
  // Reaped on every path out of the test, an assertion's early return included.
  struct Reaper {
    pid_t pid;
    ~Reaper() {
      if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
      }
    }
  } reaper{child};
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  close(ready[0]);
  ASSERT_EQ(c, 'y');

  auto refused = DataLock::Acquire(dir.path(), "maillens import");
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(refused.status()));
  EXPECT_NE(refused.status().message().find(absl::StrCat("maillens-collector (pid ", child, ")")),
            std::string::npos)
      << refused.status();

  ASSERT_EQ(kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  reaper.pid = -1;
  // The dead holder's name is still in the file, but the lock is free.
  EXPECT_NE(ReadAll(DataLockPath(dir.path())).find("maillens-collector"), std::string::npos);
  auto taken = DataLock::Acquire(dir.path(), "maillens import");
  ASSERT_TRUE(taken.ok()) << taken.status();
  EXPECT_EQ(ReadAll(DataLockPath(dir.path())),
            absl::StrCat("maillens import (pid ", getpid(), ")\n"));
}

TEST(DataLockTest, UnopenableLockFileIsAnErrorNotARefusal) {
  TempDir dir;
  // A directory where the lock file should be: open fails for everyone, root included.
  std::filesystem::create_directory(DataLockPath(dir.path()));
  auto lock = DataLock::Acquire(dir.path(), "maillens import");
  ASSERT_FALSE(lock.ok());
  EXPECT_FALSE(absl::IsFailedPrecondition(lock.status())) << lock.status();
  EXPECT_NE(lock.status().message().find(DataLockPath(dir.path())), std::string::npos);
}

// Root's import into the collector's directory: the lock file it creates is the directory
// owner's, so the collector (not root) can open it for writing afterwards.
TEST(DataLockTest, RootCreatesTheFileForTheDirectorysOwner) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  TempDir dir;
  const std::string data = dir.path() + "/data";
  std::filesystem::create_directory(data);
  ASSERT_EQ(chown(data.c_str(), 65534, 65534), 0);
  {
    auto lock = DataLock::Acquire(data, "maillens import");
    ASSERT_TRUE(lock.ok()) << lock.status();
  }
  struct stat st {};
  ASSERT_EQ(stat(DataLockPath(data).c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 65534u);
}

}  // namespace
}  // namespace maillens::store
