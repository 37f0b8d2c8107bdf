// SPDX-License-Identifier: MIT
package io.takt.peer;

/** What WELCOME reported (docs/PROTOCOL.md §3.2). */
public record ServerInfo(int version, int maxFrame, int maxAttach, long queueLimit, long uid, long gid, long pid) {
}
