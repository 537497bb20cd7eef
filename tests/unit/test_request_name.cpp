// SPDX-License-Identifier: LGPL-2.1-or-later
#include <string>

#include <gtest/gtest.h>

#include "request_name.h"

using lkmd::looksLikeModalias;
using lkmd::whyInvalidModuleName;
using lkmd::whyInvalidModuleReference;
using lkmd::whyInvalidRequestName;

TEST(RequestName, AcceptsNamesTheKernelRequests) {
    for (const char *name : {"fs-vfat", "char-major-10-237", "net-pf-10-proto-132-type-1",
                             "crypto-cbc(aes)-all", "nfnetlink-subsys-12", "rtnl-link-dummy",
                             "tty-ldisc-16", "nls_cp437", "devname:loop-control"})
        EXPECT_EQ(whyInvalidRequestName(name), nullptr) << name;
}

TEST(RequestName, AcceptsModaliasesLongerThanModuleNames) {
    const std::string input =
        "input:b0011v0001p0001eAB41-e0,1,4,11,14,k71,72,73,74,75,76,77,"
        "79,7A,7B,7C,7D,7E,7F,80,8C,8E,8F,9B,9C,9D,9E,9F,A3,A4,A5,A6,AC,"
        "AD,B7,B8,B9,D9,E2,ram4,l0,1,2,sfw";
    EXPECT_GT(input.size(), lkmd::kMaxModuleNameLength);
    EXPECT_EQ(whyInvalidRequestName(input), nullptr);
}

TEST(RequestName, RefusesEmptyName) {
    EXPECT_STREQ(whyInvalidRequestName(""), "name is empty");
}

TEST(RequestName, RefusesModuleNameOf56Bytes) {
    EXPECT_EQ(whyInvalidRequestName(std::string(55, 'a')), nullptr);
    EXPECT_STREQ(whyInvalidRequestName(std::string(56, 'a')), "longer than 55 bytes");
}

TEST(RequestName, RefusesSlashControlAndNonAscii) {
    EXPECT_STREQ(whyInvalidRequestName("fs-../../x"), "contains '/'");
    EXPECT_STREQ(whyInvalidRequestName("fs-a\nb"), "contains control characters");
    EXPECT_STREQ(whyInvalidRequestName(std::string("fs-a\0b", 6)), "contains control characters");
    EXPECT_STREQ(whyInvalidRequestName("fs-\xc3\xa9"), "contains non-ASCII bytes");
    EXPECT_STREQ(whyInvalidRequestName("fs-a b"), "contains spaces");
}

TEST(RequestName, RefusesShellMetacharactersInPlainNames) {
    for (const char *name : {"fs-x;reboot", "fs-$(id)", "fs-`id`", "fs-a|b", "fs-a&b", "fs-'x'"})
        EXPECT_NE(whyInvalidRequestName(name), nullptr) << name;
}

TEST(RequestName, RefusesModaliasBeyond4095Bytes) {
    EXPECT_EQ(whyInvalidRequestName("pci:" + std::string(4091, 'v')), nullptr);
    EXPECT_STREQ(whyInvalidRequestName("pci:" + std::string(4092, 'v')),
                 "modalias is longer than 4095 bytes");
}

TEST(RequestName, ModaliasNeedsLowercaseBusPrefix) {
    EXPECT_TRUE(looksLikeModalias("pci:v00008086"));
    EXPECT_TRUE(looksLikeModalias("devname:fuse"));
    EXPECT_FALSE(looksLikeModalias(":x"));
    EXPECT_FALSE(looksLikeModalias("PCI:x"));
    EXPECT_FALSE(looksLikeModalias("fs-vfat"));
}

TEST(RequestName, AcceptsDmiModaliasWithSlashesButNoOtherNameWithSlash) {
    EXPECT_EQ(whyInvalidRequestName("dmi:bvnSeaBIOS:bvr1.16.2:bd04/01/2014:svnQEMU:"), nullptr);
    EXPECT_STREQ(whyInvalidRequestName("fs-a/b"), "contains '/'");
}

// libkmod cuts a name at its first '.' (modname_normalize): a module name with one would be
// another module to delete_module() than to lkmd's checks; a request may hold one
// ("netdev-eth0.100"), but not start with one.
TEST(RequestName, DotsInModuleNamesAndAtTheStartOfRequests) {
    EXPECT_STREQ(whyInvalidModuleName("e1000.x"),
                 "contains '.' (libkmod would cut the name there)");
    for (const char *name : {".", "..", ".e1000"})
        EXPECT_STREQ(whyInvalidRequestName(name),
                     "starts with '.' (libkmod would cut the name there)")
            << name;
    EXPECT_EQ(whyInvalidRequestName("netdev-eth0.100"), nullptr);
    EXPECT_EQ(whyInvalidRequestName("e1000.x"), nullptr);
}

// info, unload and pin take aliases as load does, but libkmod would cut "e1000.x" to e1000.
TEST(RequestName, ModuleReferencesAreRequestNamesWithoutDots) {
    for (const char *name : {"vfat", "fs-vfat", "nls-cp437", "pci:v00008086d0000100Esv*"})
        EXPECT_EQ(whyInvalidModuleReference(name), nullptr) << name;
    for (const char *name : {"e1000.x", "vfat.ko", "dmi:bvr1.16.2:"})
        EXPECT_STREQ(whyInvalidModuleReference(name),
                     "contains '.' (libkmod would cut the name there)")
            << name;
    EXPECT_STREQ(whyInvalidModuleReference(".."),
                 "starts with '.' (libkmod would cut the name there)");
    EXPECT_STREQ(whyInvalidModuleReference("fs-a/b"), "contains '/'");
    EXPECT_STREQ(whyInvalidModuleReference(""), "name is empty");
}
