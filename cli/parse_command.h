// `maillens parse [FILE…|-]`: shows how maillens reads each line — one JSON object per line,
// or with --stats, counts per daemon and kind.
#ifndef MAILLENS_CLI_PARSE_COMMAND_H_
#define MAILLENS_CLI_PARSE_COMMAND_H_

#include <string>
#include <vector>

namespace maillens::cli {

int RunParse(const std::vector<std::string>& args);

}  // namespace maillens::cli

#endif  // MAILLENS_CLI_PARSE_COMMAND_H_
