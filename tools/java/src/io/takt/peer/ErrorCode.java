// SPDX-License-Identifier: MIT
package io.takt.peer;

/** The error codes of an ERROR frame (docs/PROTOCOL.md §7). */
public enum ErrorCode {
    BAD_FRAME(1), BAD_TYPE(2), TOO_LARGE(3), STATE(4), VERSION(5), BAD_CHANNEL(6), DENIED(7),
    SLOW_CONSUMER(8), LIMIT(9), SHUTDOWN(10),
    INVALID(20), EXISTS(21), NOENT(22), ACCESS(23), NOSPC(24), AGAIN(25), MSGSIZE(26), BADMSG(27),
    LAYOUT(28), BUSY(29), TIMEDOUT(30), NOMEM(31),
    /** A queue role on a state channel (or a state role on a queue channel). */
    KIND(32),
    SYSTEM(99),
    /** A code this client does not know (from a newer server). */
    UNKNOWN(-1);

    public final int code;

    ErrorCode(int code) {
        this.code = code;
    }

    public static ErrorCode of(int code) {
        for (ErrorCode c : values())
            if (c.code == code)
                return c;
        return UNKNOWN;
    }
}
