// SPDX-License-Identifier: MIT
package io.takt.peer;

/** What ATTACHED reported (docs/PROTOCOL.md §3.4). */
public record ChannelInfo(long capacity, int lanes, int maxRecord, int role, int slow, boolean created,
        long queueLimit, long nonce) {
}
