#include "agent/discovery.h"

#include <dirent.h>
#include <fnmatch.h>
#include <glob.h>

#include <algorithm>
#include <set>

namespace maillens::agent {

bool IsGlobPattern(const std::string& pattern) {
  return pattern.find_first_of("*?[") != std::string::npos;
}

bool MatchesAnyPattern(const std::string& path, const std::vector<std::string>& patterns) {
  for (const std::string& pattern : patterns) {
    if (pattern == path) return true;
    if (IsGlobPattern(pattern) && fnmatch(pattern.c_str(), path.c_str(), FNM_PATHNAME) == 0) {
      return true;
    }
  }
  return false;
}

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string BaseName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::vector<std::string> ExpandLivePaths(const std::vector<std::string>& patterns) {
  std::set<std::string> literal;
  std::set<std::string> matched;
  for (const std::string& pattern : patterns) {
    if (!IsGlobPattern(pattern)) {
      literal.insert(pattern);
      continue;
    }
    glob_t g{};
    if (glob(pattern.c_str(), 0, nullptr, &g) == 0) {
      for (size_t i = 0; i < g.gl_pathc; ++i) {
        std::string path = g.gl_pathv[i];
        std::optional<FileStat> st = StatPath(path);
        if (st && st->regular) matched.insert(path);
      }
    }
    globfree(&g);
  }
  std::set<std::string> all = literal;
  all.insert(matched.begin(), matched.end());
  std::vector<std::string> out(literal.begin(), literal.end());
  for (const std::string& path : matched) {
    if (literal.count(path) > 0) continue;
    bool rotated = false;
    for (const std::string& other : all) {
      if (other == path || DirName(other) != DirName(path)) continue;
      std::string other_base = BaseName(other);
      std::string base = BaseName(path);
      std::optional<std::string_view> suffix = SiblingSuffix(other_base, base);
      if (suffix && LooksRotated(*suffix)) {
        rotated = true;
        break;
      }
    }
    if (!rotated) out.push_back(path);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<Sibling> ListSiblings(const std::string& live,
                                  const std::vector<std::string>& all_live) {
  std::vector<Sibling> out;
  std::string dir = DirName(live);
  std::string base = BaseName(live);
  // Live names in the same directory: a sibling belongs to the longest of them it extends.
  std::vector<std::string> neighbours;
  std::set<std::string> live_set(all_live.begin(), all_live.end());
  for (const std::string& other : all_live) {
    if (DirName(other) == dir) neighbours.push_back(BaseName(other));
  }
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (struct dirent* entry = readdir(d)) {
    std::string name = entry->d_name;
    if (!SiblingSuffix(base, name)) continue;
    std::string path = dir == "/" ? "/" + name : dir + "/" + name;
    if (live_set.count(path) > 0) continue;
    bool longer_owner = false;
    for (const std::string& neighbour : neighbours) {
      if (neighbour.size() > base.size() && SiblingSuffix(neighbour, name)) longer_owner = true;
    }
    if (longer_owner) continue;
    std::optional<FileStat> st = StatPath(path);
    if (!st || !st->regular) continue;
    out.push_back({path, *st});
  }
  closedir(d);
  std::sort(out.begin(), out.end(), [](const Sibling& a, const Sibling& b) {
    if (a.stat.mtime_ns != b.stat.mtime_ns) return a.stat.mtime_ns < b.stat.mtime_ns;
    return a.path > b.path;  // mail.log.2 before mail.log.1 when the clock cannot tell
  });
  return out;
}

}  // namespace maillens::agent
