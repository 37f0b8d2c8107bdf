// SPDX-License-Identifier: MIT
package io.takt.peer;

/**
 * Options of ATTACH (docs/PROTOCOL.md §3.3).  {@code AttachOptions.create()} asks taktd to
 * create the channel if it is missing, with the geometry given; {@code new AttachOptions()}
 * attaches to an existing channel.
 */
public final class AttachOptions {
    /** Slow-consumer policies (§6). */
    public enum Slow { SERVER_DEFAULT, DISCONNECT, DROP_OLDEST }

    boolean create, exclusive;
    int lanes = 1;
    long capacity = 1 << 20;
    int maxRecord = 0;
    int mode = 0600;
    long queueLimit = 0;
    Slow slow = Slow.SERVER_DEFAULT;
    int window = 65536;
    long windowBytes = 8L << 20;

    public AttachOptions() {}

    /** Create the channel if it does not exist. */
    public static AttachOptions create() {
        AttachOptions o = new AttachOptions();
        o.create = true;
        return o;
    }

    /** With create: fail with ChannelExists if it exists. */
    public AttachOptions exclusive(boolean v) { exclusive = v; return this; }
    /** Producer lanes of a new channel, 1..64. */
    public AttachOptions lanes(int v) { lanes = v; return this; }
    /** Bytes per lane of a new channel: a power of two, 1 KiB .. 1 GiB. */
    public AttachOptions capacity(long v) { capacity = v; return this; }
    /** Largest payload of a new channel (default min(capacity/4, 64 KiB)). */
    public AttachOptions maxRecord(int v) { maxRecord = v; return this; }
    /** Permission bits of a new channel (default 0600). */
    public AttachOptions mode(int v) { mode = v; return this; }
    /** Consumer: queue limit in bytes (0 = server default). */
    public AttachOptions queueLimit(long v) { queueLimit = v; return this; }
    /** Consumer: slow-consumer policy. */
    public AttachOptions slow(Slow v) { slow = v; return this; }
    /** Producer: most unacknowledged records in flight. */
    public AttachOptions window(int v) { window = v; return this; }
    /** Producer: most unacknowledged bytes in flight (whole frames). */
    public AttachOptions windowBytes(long v) { windowBytes = v; return this; }
}
