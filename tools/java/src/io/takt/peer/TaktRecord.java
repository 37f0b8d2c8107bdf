// SPDX-License-Identifier: MIT
package io.takt.peer;

/**
 * One record received from a channel.
 *
 * @param channel       the channel's name
 * @param index         1, 2, 3, ... per consumer attachment (records delivered to this client)
 * @param type          the record type chosen by the producer (an unsigned 32-bit value)
 * @param data          the payload
 * @param droppedBefore records taktd discarded just before this one (drop-oldest policy), else 0
 */
public record TaktRecord(String channel, long index, int type, byte[] data, long droppedBefore) {
    @Override
    public String toString() {
        return "TaktRecord[channel=" + channel + ", index=" + index + ", type=" + Integer.toUnsignedString(type)
                + ", len=" + data.length + "]";
    }
}
