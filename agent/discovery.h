// Discovery: which live files to tail, and where their rotated copies are.
//
// Live files come from glob patterns (a pattern without wildcards names one live path, present
// or not). Rotated copies are looked up by name beside the live file: DIR/NAME.<suffix> or
// DIR/NAME-<suffix> (see SiblingSuffix). The tailer reads a sibling only to finish content it
// already knows (by identity) or content that appeared while it was not looking; it never
// backfills old rotations on its own. Thread-safe (no shared state).
#ifndef MAILLENS_AGENT_DISCOVERY_H_
#define MAILLENS_AGENT_DISCOVERY_H_

#include <string>
#include <vector>

#include "agent/file_identity.h"

namespace maillens::agent {

// True when `pattern` holds glob wildcards (*, ?, [).
bool IsGlobPattern(const std::string& pattern);

// True when `path` is named by one of `patterns` (fnmatch, '/' matched literally).
bool MatchesAnyPattern(const std::string& path, const std::vector<std::string>& patterns);

// The live paths the patterns name now, sorted and unique. A wildcard match that looks like a
// rotated sibling of another live path (mail.log.1 beside mail.log) is left out, so a broad
// pattern such as /var/log/mail* does not tail rotated files as live ones.
std::vector<std::string> ExpandLivePaths(const std::vector<std::string>& patterns);

struct Sibling {
  std::string path;
  FileStat stat;
};

// The regular files beside `live` named like its rotated copies, oldest modification first.
// A file that is itself one of `all_live`, or that belongs to a longer live name in the same
// directory (mail.log.1 belongs to mail.log, not to mail), is not listed.
std::vector<Sibling> ListSiblings(const std::string& live,
                                  const std::vector<std::string>& all_live);

// "dir/name" -> "dir" and "name" ("." for a bare name).
std::string DirName(const std::string& path);
std::string BaseName(const std::string& path);

}  // namespace maillens::agent

#endif  // MAILLENS_AGENT_DISCOVERY_H_
