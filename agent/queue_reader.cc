#include "agent/queue_reader.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "google/protobuf/util/json_util.h"

extern char** environ;

namespace maillens::agent {
namespace {

// Closes both ends it still holds on scope exit.
struct Pipe {
  int fd[2] = {-1, -1};
  ~Pipe() {
    for (int f : fd) {
      if (f >= 0) close(f);
    }
  }
};

}  // namespace

absl::StatusOr<CommandOutput> RunCommand(const std::vector<std::string>& argv) {
  if (argv.empty()) return absl::InvalidArgumentError("no command to run");
  Pipe out, err;
  if (pipe2(out.fd, O_CLOEXEC) != 0 || pipe2(err.fd, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out.fd[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err.fd[1], STDERR_FILENO);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    return absl::NotFoundError(absl::StrCat("cannot run ", argv[0], ": ", std::strerror(rc)));
  }
  close(out.fd[1]);
  out.fd[1] = -1;
  close(err.fd[1]);
  err.fd[1] = -1;
  CommandOutput result;
  // Both pipes at once, so a child filling one while we wait on the other cannot stall.
  struct pollfd fds[2] = {{out.fd[0], POLLIN, 0}, {err.fd[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int k = 0; k < 2; ++k) {
      if (fds[k].fd < 0 || fds[k].revents == 0) continue;
      ssize_t n = read(fds[k].fd, buf, sizeof(buf));
      if (n > 0) {
        sinks[k]->append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        fds[k].fd = -1;
        --open_fds;
      }
    }
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

absl::StatusOr<std::vector<v1::QueuedMessage>> ParsePostqueueJson(std::string_view text) {
  std::vector<v1::QueuedMessage> messages;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(absl::string_view(text.data(), text.size()), '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    v1::QueuedMessage message;
    auto status = google::protobuf::util::JsonStringToMessage(
        google::protobuf::StringPiece(line.data(), line.size()), &message, options);
    if (!status.ok() || message.queue_id().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("postqueue -j line ", line_number, " is not a queue entry: ",
                       status.ok() ? std::string("no queue_id") : std::string(status.message())));
    }
    messages.push_back(std::move(message));
  }
  return messages;
}

v1::QueueSnapshot QueueReader::Read() {
  v1::QueueSnapshot snapshot;
  snapshot.set_taken_us(absl::ToUnixMicros(options_.now()));
  std::vector<std::string> dirs = options_.config_dirs;
  if (dirs.empty()) dirs.push_back("");
  std::vector<std::string> errors;
  for (const std::string& dir : dirs) {
    std::vector<std::string> argv = {options_.postqueue};
    if (!dir.empty()) {
      argv.push_back("-c");
      argv.push_back(dir);
    }
    argv.push_back("-j");
    std::string what = absl::StrJoin(argv, " ");
    absl::StatusOr<CommandOutput> output = options_.run(argv);
    if (!output.ok()) {
      errors.push_back(absl::StrCat(what, ": ", output.status().message()));
      continue;
    }
    if (output->exit_code != 0) {
      errors.push_back(absl::StrCat(what, " exited with ", output->exit_code, ": ",
                                    absl::StripAsciiWhitespace(output->err)));
      continue;
    }
    absl::StatusOr<std::vector<v1::QueuedMessage>> messages = ParsePostqueueJson(output->out);
    if (!messages.ok()) {
      errors.push_back(absl::StrCat(what, ": ", messages.status().message()));
      continue;
    }
    for (v1::QueuedMessage& m : *messages) {
      m.set_instance(dir);
      *snapshot.add_messages() = std::move(m);
    }
  }
  snapshot.set_error(absl::StrJoin(errors, "; "));
  return snapshot;
}

}  // namespace maillens::agent
