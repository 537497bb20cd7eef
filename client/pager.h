// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "terminal.h"

namespace lkmd::client {

// What runs as the pager, and with what in its environment.
struct PagerChoice {
    std::vector<std::string> argv;  // empty: no pager
    std::vector<std::pair<std::string, std::string>> environment;
};

// systemd's rules: $SYSTEMD_PAGER, else $PAGER, else "less"; either set to "" or "cat" means no
// pager. LESS defaults to FRSXMK (quit if one screen, raw colours, chop long lines, no init,
// long prompt, quit on ^C). In secure mode LESSSECURE=1 keeps less from running commands or
// opening files, and a pager chosen only through $PAGER that is not less is passed over for less:
// nobody may be given a shell through "sudo lkmctl list".
PagerChoice choosePager(const Getenv &getenv, bool secure, bool utf8);

// Secure mode: $SYSTEMD_PAGERSECURE when it is a boolean; else unless the effective user owns the
// login session (sessionOwner unknown: secure).
bool pagerSecure(const Getenv &getenv, uid_t effectiveUid, std::optional<uid_t> sessionOwner);

// The pager of this process: while open, stdout goes into it. close() (or the destructor) ends
// stdout and waits until the user quits the pager.
class Pager {
public:
    Pager() = default;
    ~Pager() { close(); }
    Pager(const Pager &) = delete;
    Pager &operator=(const Pager &) = delete;

    // Starts choice.argv with stdout piped into it; false (stdout untouched) when it cannot.
    bool open(const PagerChoice &choice);
    void close();

private:
    pid_t child_ = -1;
};

}  // namespace lkmd::client
