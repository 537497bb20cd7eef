// SPDX-License-Identifier: LGPL-2.1-or-later
#include "bus_reader.h"

#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>

namespace lkmd::client {
namespace {

template <typename Basic>
int readBasic(sd_bus_message *message, char type, Basic &value) {
    return sd_bus_message_read_basic(message, type, &value);
}

int readCounts(sd_bus_message *message, Counts &counts) {
    int r = sd_bus_message_enter_container(message, SD_BUS_TYPE_ARRAY, "{st}");
    if (r < 0)
        return r;
    for (;;) {
        const char *key;
        std::uint64_t count;
        r = sd_bus_message_read(message, "{st}", &key, &count);
        if (r < 0)
            return r;
        if (r == 0)
            break;
        counts[key] = count;
    }
    return sd_bus_message_exit_container(message);
}

// Reads the variant's content of signature contents into value, or skips it (value unset).
int readVariantContent(sd_bus_message *message, std::string_view contents,
                       std::optional<PropertyValue> &value) {
    int r;
    if (contents.size() == 1) {
        const char type = contents[0];
        switch (type) {
            case SD_BUS_TYPE_STRING:
            case SD_BUS_TYPE_OBJECT_PATH:
            case SD_BUS_TYPE_SIGNATURE: {
                const char *text;
                r = readBasic(message, type, text);
                if (r >= 0)
                    value = std::string(text);
                return r;
            }
            case SD_BUS_TYPE_BOOLEAN: {
                int flag;
                r = readBasic(message, type, flag);
                if (r >= 0)
                    value = flag != 0;
                return r;
            }
            case SD_BUS_TYPE_BYTE: {
                std::uint8_t number;
                r = readBasic(message, type, number);
                if (r >= 0)
                    value = std::uint64_t{number};
                return r;
            }
            case SD_BUS_TYPE_UINT16: {
                std::uint16_t number;
                r = readBasic(message, type, number);
                if (r >= 0)
                    value = std::uint64_t{number};
                return r;
            }
            case SD_BUS_TYPE_UINT32: {
                std::uint32_t number;
                r = readBasic(message, type, number);
                if (r >= 0)
                    value = std::uint64_t{number};
                return r;
            }
            case SD_BUS_TYPE_UINT64: {
                std::uint64_t number;
                r = readBasic(message, type, number);
                if (r >= 0)
                    value = number;
                return r;
            }
            case SD_BUS_TYPE_INT16: {
                std::int16_t number;
                r = readBasic(message, type, number);
                if (r >= 0)
                    value = std::int64_t{number};
                return r;
            }
            case SD_BUS_TYPE_INT32: {
                std::int32_t number;
                r = readBasic(message, type, number);
                if (r >= 0)
                    value = std::int64_t{number};
                return r;
            }
            case SD_BUS_TYPE_INT64: {
                std::int64_t number;
                r = readBasic(message, type, number);
                if (r >= 0)
                    value = number;
                return r;
            }
            case SD_BUS_TYPE_DOUBLE: {
                double number;
                r = readBasic(message, type, number);
                if (r >= 0)
                    value = number;
                return r;
            }
            default:
                break;
        }
    } else if (contents == "as") {
        std::vector<std::string> strings;
        r = readStringArray(message, strings);
        if (r >= 0)
            value = std::move(strings);
        return r;
    } else if (contents == "a{st}") {
        Counts counts;
        r = readCounts(message, counts);
        if (r >= 0)
            value = std::move(counts);
        return r;
    }

    const std::string signature(contents);
    return sd_bus_message_skip(message, signature.c_str());
}

template <typename Record>
int readRecordList(sd_bus_message *message, std::vector<Record> &records,
                   Record (*fromProperties)(const PropertyMap &)) {
    int r = sd_bus_message_enter_container(message, SD_BUS_TYPE_ARRAY, "a{sv}");
    if (r < 0)
        return r;
    for (;;) {
        PropertyMap properties;
        r = readPropertyMap(message, properties);
        if (r < 0)
            return r;
        if (r == 0)
            break;
        records.push_back(fromProperties(properties));
    }
    return sd_bus_message_exit_container(message);
}

}  // namespace

int readPropertyMap(sd_bus_message *message, PropertyMap &properties) {
    return readPropertyMap(message, properties, nullptr);
}

int readPropertyMapList(sd_bus_message *message, std::vector<PropertyMap> &records) {
    return readRecordList(
        message, records, +[](const PropertyMap &record) { return record; });
}

int readPropertyMap(sd_bus_message *message, PropertyMap &properties, RecordLists *lists) {
    int r = sd_bus_message_enter_container(message, SD_BUS_TYPE_ARRAY, "{sv}");
    if (r <= 0)
        return r;

    for (;;) {
        r = sd_bus_message_enter_container(message, SD_BUS_TYPE_DICT_ENTRY, "sv");
        if (r < 0)
            return r;
        if (r == 0)
            break;

        const char *key;
        r = sd_bus_message_read_basic(message, SD_BUS_TYPE_STRING, &key);
        if (r < 0)
            return r;
        std::string name(key);

        const char *contents;
        r = sd_bus_message_peek_type(message, nullptr, &contents);
        if (r < 0)
            return r;
        r = sd_bus_message_enter_container(message, SD_BUS_TYPE_VARIANT, contents);
        if (r < 0)
            return r;

        std::optional<PropertyValue> value;
        if (lists != nullptr && std::string_view(contents) == "aa{sv}") {
            std::vector<PropertyMap> records;
            r = readPropertyMapList(message, records);
            if (r >= 0)
                lists->insert_or_assign(name, std::move(records));
        } else {
            r = readVariantContent(message, contents, value);
        }
        if (r < 0)
            return r;
        if (value)
            properties.insert_or_assign(std::move(name), std::move(*value));

        r = sd_bus_message_exit_container(message);
        if (r < 0)
            return r;
        r = sd_bus_message_exit_container(message);
        if (r < 0)
            return r;
    }

    r = sd_bus_message_exit_container(message);
    if (r < 0)
        return r;
    return 1;
}

int readModuleList(sd_bus_message *message, std::vector<ModuleInfo> &modules) {
    return readRecordList(message, modules, moduleInfoFromProperties);
}

int readRequestList(sd_bus_message *message, std::vector<RequestInfo> &requests) {
    return readRecordList(message, requests, requestInfoFromProperties);
}

int readStringArray(sd_bus_message *message, std::vector<std::string> &strings) {
    int r = sd_bus_message_enter_container(message, SD_BUS_TYPE_ARRAY, "s");
    if (r < 0)
        return r;
    for (;;) {
        const char *text;
        r = sd_bus_message_read_basic(message, SD_BUS_TYPE_STRING, &text);
        if (r < 0)
            return r;
        if (r == 0)
            break;
        strings.emplace_back(text);
    }
    return sd_bus_message_exit_container(message);
}

}  // namespace lkmd::client
