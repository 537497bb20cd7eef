// SPDX-License-Identifier: LGPL-2.1-or-later
#include "requester_info.h"

namespace lkmd::client {

RequesterInfo requesterInfoFromProperties(const PropertyMap &properties) {
    RequesterInfo requester;
    assignString(properties, "Requester", requester.description);
    assignBool(properties, "RequesterKnown", requester.known);
    assignString(properties, "RequesterUnknownBecause", requester.unknownBecause);
    assignInteger(properties, "RequesterPid", requester.pid);
    assignString(properties, "RequesterComm", requester.comm);
    assignInteger(properties, "RequesterUid", requester.uid);
    assignString(properties, "RequesterUnit", requester.unit);
    assignString(properties, "RequesterUserNamespace", requester.userNamespace);
    assignString(properties, "RequesterCallSite", requester.callSite);
    assignString(properties, "RequesterFromInitOf", requester.fromInitOf);
    return requester;
}

}  // namespace lkmd::client
