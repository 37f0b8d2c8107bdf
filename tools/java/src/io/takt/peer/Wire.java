// SPDX-License-Identifier: MIT
package io.takt.peer;

/** Constants of the taktd protocol, version 1 (docs/PROTOCOL.md). Little-endian everywhere. */
final class Wire {
    private Wire() {}

    static final int VERSION = 1;
    static final int HDR = 16;
    static final int MIN_FRAME = 4096;
    static final int BATCH_REC = 8;

    static final int HELLO = 0x0001, WELCOME = 0x0002, ATTACH = 0x0003, ATTACHED = 0x0004,
            DETACH = 0x0005, DETACHED = 0x0006, DATA = 0x0010, DATA_BATCH = 0x0011, ACK = 0x0012,
            DROPPED = 0x0013, PING = 0x0020, PONG = 0x0021, ERROR = 0x0030, BYE = 0x0040;

    static final int FLAG_FATAL = 0x0001;
    static final int ROLE_PRODUCE = 1, ROLE_CONSUME = 2;
    static final int ATTACH_CREATE = 0x0001, ATTACH_EXCL = 0x0002;
    /** Record types at or above this (unsigned) are reserved by takt. */
    static final long TYPE_RESERVED = 0xFFFF0000L;

    static boolean validName(String name) {
        if (name == null || name.isEmpty() || name.length() > 200 || name.equals(".") || name.equals(".."))
            return false;
        for (int i = 0; i < name.length(); i++) {
            char c = name.charAt(i);
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.'
                    || c == '_' || c == '-'))
                return false;
        }
        return true;
    }
}
