// SPDX-License-Identifier: LGPL-2.1-or-later
#include "logging.h"

#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <systemd/sd-journal.h>

#include "log.h"

namespace lkmd {
namespace {

int syslogPriority(spdlog::level::level_enum level) {
    switch (level) {
        case spdlog::level::trace:
        case spdlog::level::debug:
            return LOG_DEBUG;
        case spdlog::level::info:
            return LOG_INFO;
        case spdlog::level::warn:
            return LOG_WARNING;
        case spdlog::level::err:
            return LOG_ERR;
        case spdlog::level::critical:
            return LOG_CRIT;
        default:
            return LOG_INFO;
    }
}

// Structured entries: the component becomes LKMD_COMPONENT= so journalctl can filter on it, and
// the module an entry is about becomes MODULE=.
class JournalSink final : public spdlog::sinks::base_sink<std::mutex> {
protected:
    void sink_it_(const spdlog::details::log_msg &msg) override {
        const std::string_view component(msg.logger_name.data(), msg.logger_name.size());
        std::vector<std::string> items;
        items.push_back("MESSAGE=" + std::string(msg.payload.data(), msg.payload.size()));
        items.push_back("PRIORITY=" + std::to_string(syslogPriority(msg.level)));
        items.push_back("LKMD_COMPONENT=" + std::string(component));
        items.push_back("SYSLOG_IDENTIFIER=lkmd");
        forEachLogField([&items](const LogField &field) {
            if (!field.second.empty())
                items.push_back(field.first + "=" + field.second);
        });
        std::vector<iovec> vectors;
        for (std::string &item : items)
            vectors.push_back({item.data(), item.size()});
        sd_journal_sendv(vectors.data(), static_cast<int>(vectors.size()));
    }
    void flush_() override {}
};

bool stderrIsJournal() {
    const char *stream = std::getenv("JOURNAL_STREAM");
    if (stream == nullptr)
        return false;
    unsigned long long device = 0;
    unsigned long long inode = 0;
    if (std::sscanf(stream, "%llu:%llu", &device, &inode) != 2)
        return false;
    struct stat st {};
    if (fstat(STDERR_FILENO, &st) < 0)
        return false;
    return st.st_dev == device && st.st_ino == inode;
}

}  // namespace

void setupLogging(spdlog::level::level_enum level) {
    spdlog::sink_ptr sink;
    if (stderrIsJournal()) {
        sink = std::make_shared<JournalSink>();
    } else {
        sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
        sink->set_pattern("%H:%M:%S.%e %L %n: %v");
    }
    setLogSinks({sink}, level);
}

}  // namespace lkmd
