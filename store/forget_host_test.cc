// Store::ForgetHost: a host's lines leave the partition and its full-text index, its
// messages, recipients and links leave the catalog, and both watermarks come back to the
// last line kept, since SQLite gives the next line of a day the ids of lines removed from
// its end. Checked in the files themselves, not through search (which re-checks every
// candidate line, so a stale index entry would not show there).
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "store/importer.h"
#include "store/retention.h"
#include "store/schema.h"
#include "store/sqlite.h"
#include "store/store.h"

namespace maillens::store {
namespace {

constexpr char kMx[] =
    "Mar  1 10:00:01 mx postfix/smtpd[20]: 2222222222: client=relay.example.org[192.0.2.9]\n"
    "Mar  1 10:00:01 mx postfix/qmgr[22]: 2222222222: from=<alice@ext.example>, size=1200, "
    "nrcpt=1 (queue active)\n"
    "Mar  1 10:00:02 mx postfix/local[23]: 2222222222: to=<bob@example.org>, relay=local, "
    "delay=1, delays=0.1/0/0/0.9, dsn=2.0.0, status=sent (delivered to mailbox)\n"
    "Mar  1 10:00:02 mx postfix/qmgr[22]: 2222222222: removed\n";
constexpr char kRelay[] =
    "Mar  1 10:00:00 relay postfix/smtpd[10]: 1111111111: client=ext.example[203.0.113.5]\n"
    "Mar  1 10:00:00 relay postfix/qmgr[12]: 1111111111: from=<alice@ext.example>, size=1000, "
    "nrcpt=1 (queue active)\n"
    "Mar  1 10:00:01 relay postfix/smtp[13]: 1111111111: to=<bob@example.org>, "
    "relay=mx[192.0.2.10]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=2.0.0, status=sent (250 2.0.0 "
    "Ok: queued as 2222222222)\n"
    "Mar  1 10:00:01 relay postfix/qmgr[12]: 1111111111: removed\n";

int64_t Int(Database* db, const std::string& sql) {
  auto select = db->Prepare(sql);
  EXPECT_TRUE(select.ok()) << select.status();
  if (!select.ok()) return -1;
  auto step = select->Step();
  EXPECT_TRUE(step.ok() && *step == Statement::StepResult::kRow) << sql;
  return select->ColumnInt(0);
}

// A temporary directory with mx.log and relay.log imported into DIR/data (year 2026: the
// lines fall on 2026-03-01); the relay's lines last, ids 5..8.
std::string ImportedSite() {
  std::string pattern = ::testing::TempDir() + "maillens_forget_XXXXXX";
  EXPECT_NE(mkdtemp(pattern.data()), nullptr);
  const std::string dir = pattern;
  std::ofstream(dir + "/mx.log") << kMx;
  std::ofstream(dir + "/relay.log") << kRelay;
  StoreOptions options;
  options.dir = dir + "/data";
  options.durable = false;
  options.correlate_behind = true;
  auto store = Store::Open(options);
  EXPECT_TRUE(store.ok()) << store.status();
  if (!store.ok()) return dir;
  ImportOptions import;
  import.year = 2026;
  for (const char* name : {"/mx.log", "/relay.log"}) {
    auto stats = ImportFile(store->get(), dir + name, import);
    EXPECT_TRUE(stats.ok()) << stats.status();
    EXPECT_EQ(stats.ok() ? stats->stored : 0, 4u);
  }
  return dir;
}

// A host with lines in an archived day is refused, naming the day, and nothing is removed:
// the archive cannot change, and its lines would be left without a host (an export of the
// day lost them, a search showed them host-less).
TEST(ForgetHostTest, AHostWithArchivedLinesIsRefusedAndKept) {
  const std::string dir = ImportedSite(), data = dir + "/data";
  ASSERT_TRUE(ArchiveDay(data, 20260301).ok());
  std::ofstream(dir + "/late.log")
      << "Mar  2 09:00:00 relay postfix/smtpd[10]: connect from ext.example[203.0.113.5]\n";
  StoreOptions options;
  options.dir = data;
  auto store = Store::Open(options);
  ASSERT_TRUE(store.ok()) << store.status();
  ImportOptions import;
  import.year = 2026;
  ASSERT_TRUE(ImportFile(store->get(), dir + "/late.log", import).ok());

  auto forgot = (*store)->ForgetHost("relay");
  ASSERT_FALSE(forgot.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(forgot.status())) << forgot.status();
  EXPECT_NE(forgot.status().message().find("20260301"), std::string_view::npos) << forgot.status();
  auto hosts = (*store)->Hosts();
  ASSERT_TRUE(hosts.ok()) << hosts.status();
  ASSERT_EQ(hosts->size(), 2u);
  EXPECT_EQ((*hosts)[1].name, "relay");
  store->reset();
  // The hot day's line of the host is still there, and the archived day exports all 8 lines.
  auto day2 = Database::Open(data + "/days/20260302.db", Database::Mode::kReadOnly);
  ASSERT_TRUE(day2.ok()) << day2.status();
  EXPECT_EQ(Int(day2->get(), "SELECT count(*) FROM events"), 1);
  int exported = 0;
  ASSERT_TRUE(ExportDay(data, 20260301, "", [&](const std::string&, std::string_view) {
                ++exported;
                return absl::OkStatus();
              }).ok());
  EXPECT_EQ(exported, 8);
  std::filesystem::remove_all(dir);
}

TEST(ForgetHostTest, LinesIndexMessagesLinksAndWatermarks) {
  const std::string dir = ImportedSite(), data = dir + "/data";
  StoreOptions options;
  options.dir = data;
  auto store = Store::Open(options);
  ASSERT_TRUE(store.ok()) << store.status();
  auto hosts = (*store)->Hosts();
  ASSERT_TRUE(hosts.ok()) << hosts.status();
  ASSERT_EQ(hosts->size(), 2u);
  EXPECT_EQ((*hosts)[1].name, "relay");
  EXPECT_EQ((*hosts)[1].lines, 4u);
  EXPECT_EQ((*hosts)[1].messages, 1u);

  // A Dovecot delivery of the relay's, as the correlator keeps it for the mailbox step.
  {
    auto catalog = Database::Open(data + "/catalog.db", Database::Mode::kReadWrite);
    ASSERT_TRUE(catalog.ok()) << catalog.status();
    ASSERT_TRUE((*catalog)
                    ->Exec("INSERT INTO mailbox_deliveries (host_id, session, time_us, user, "
                           "message_id, status, action, mailbox, target, reason) SELECT id, 's', "
                           "0, 'u', 'm', 'saved', '', 'INBOX', '', '' FROM hosts WHERE name = "
                           "'relay'")
                    .ok());
    EXPECT_EQ(Int(catalog->get(), "SELECT count(*) FROM mailbox_deliveries"), 1);
  }
  auto forgot = (*store)->ForgetHost("relay");
  ASSERT_TRUE(forgot.ok()) << forgot.status();
  {
    auto catalog = Database::Open(data + "/catalog.db", Database::Mode::kReadOnly);
    ASSERT_TRUE(catalog.ok()) << catalog.status();
    EXPECT_EQ(Int(catalog->get(), "SELECT count(*) FROM mailbox_deliveries"), 0);
  }
  EXPECT_EQ(forgot->lines, 4u);
  EXPECT_EQ(forgot->messages, 1u);
  EXPECT_EQ(forgot->links, 1u);
  EXPECT_TRUE(absl::IsNotFound((*store)->ForgetHost("relay").status()));
  store->reset();

  const std::vector<int64_t> days = HotDays(data);
  ASSERT_EQ(days, std::vector<int64_t>{20260301});
  const std::string partition_path = absl::StrCat(data, "/days/20260301.db");
  auto partition = Database::Open(partition_path, Database::Mode::kReadOnly);
  ASSERT_TRUE(partition.ok()) << partition.status();
  EXPECT_EQ(Int(partition->get(), "SELECT count(*) FROM events"), 4);
  EXPECT_EQ(Int(partition->get(), "SELECT max(id) FROM events"), 4);
  // The index: no entry of the relay's lines, and it claims no line after the last kept.
  const std::string side = FtsFilePath(partition_path);
  auto index = Database::Open(std::filesystem::exists(side) ? side : partition_path,
                              Database::Mode::kReadOnly);
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_EQ(
      Int(index->get(), "SELECT count(*) FROM events_fts WHERE events_fts MATCH '\"1111111111\"'"),
      0);
  EXPECT_EQ(
      Int(index->get(), "SELECT count(*) FROM events_fts WHERE events_fts MATCH '\"2222222222\"'"),
      4);
  EXPECT_EQ(Int(index->get(), "SELECT count(*) FROM events_fts WHERE events_fts MATCH 'postfix'"),
            4);
  if (std::filesystem::exists(side)) {
    EXPECT_EQ(Int(index->get(), "SELECT indexed_id FROM fts_state WHERE id = 1"), 4);
  }
  auto catalog = Database::Open(data + "/catalog.db", Database::Mode::kReadOnly);
  ASSERT_TRUE(catalog.ok()) << catalog.status();
  EXPECT_EQ(Int(catalog->get(), "SELECT correlated_id FROM partitions WHERE day = 20260301"), 4);
  EXPECT_EQ(Int(catalog->get(), "SELECT count(*) FROM hosts"), 1);
  EXPECT_EQ(Int(catalog->get(), "SELECT count(*) FROM messages"), 1);
  EXPECT_EQ(Int(catalog->get(), "SELECT count(*) FROM links"), 0);
  EXPECT_EQ(Int(catalog->get(), "SELECT count(*) FROM files"), 1);
  EXPECT_EQ(Int(catalog->get(),
                "SELECT count(*) FROM recipients WHERE message NOT IN (SELECT id FROM messages)"),
            0);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace maillens::store
