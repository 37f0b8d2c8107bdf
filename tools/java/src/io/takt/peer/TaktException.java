// SPDX-License-Identifier: MIT
package io.takt.peer;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

/**
 * Base class of every error of the taktd client.  The subclasses, nested here:
 * <ul>
 * <li>{@link NotRunning}: taktd is not running (no socket, or nobody listening);</li>
 * <li>{@link SocketPermission}: the socket's mode refuses this process;</li>
 * <li>{@link ConnectionLost}: taktd closed the connection, died or restarted;</li>
 * <li>{@link Timeout}: a deadline passed;</li>
 * <li>{@link Closed}: the client, producer or consumer is closed;</li>
 * <li>{@link ServerError}: an ERROR frame, with its {@link ErrorCode}; the codes
 *     applications handle have subclasses: {@link Denied}, {@link NoSuchChannel},
 *     {@link AccessDenied}, {@link ChannelExists}, {@link Busy}, {@link SlowConsumer},
 *     {@link MessageTooLarge} (and the client-side {@link RecordTooLarge}),
 *     {@link InvalidArgument}.</li>
 * </ul>
 */
public class TaktException extends IOException {
    private static final long serialVersionUID = 1L;

    public TaktException(String message) {
        super(message);
    }

    public TaktException(String message, Throwable cause) {
        super(message, cause);
    }

    /** Connecting to taktd failed: no socket file, or nobody listens on it. */
    public static class NotRunning extends TaktException {
        private static final long serialVersionUID = 1L;
        public final Path socket;

        public NotRunning(Path socket, Throwable cause) {
            super("taktd is not running: cannot connect to " + socket + " (" + cause.getMessage()
                    + "); start taktd, or give the socket path (TAKTD_SOCKET)", cause);
            this.socket = socket;
        }
    }

    /** The socket's permissions do not let this process connect. */
    public static class SocketPermission extends TaktException {
        private static final long serialVersionUID = 1L;

        public SocketPermission(Path socket, Throwable cause) {
            super("cannot connect to taktd at " + socket + ": permission denied (the socket's mode, "
                    + "0660 by default, needs its owner or group)", cause);
        }
    }

    /**
     * The connection ended without the client closing it: taktd shut down (BYE),
     * was killed or restarted.  {@link #committed} maps each producing channel to
     * the records taktd acknowledged: reconnect and resend the rest (at-least-once).
     */
    public static class ConnectionLost extends TaktException {
        private static final long serialVersionUID = 1L;
        public final transient Map<String, Long> committed;

        public ConnectionLost(String message, Map<String, Long> committed, Throwable cause) {
            super(message, cause);
            this.committed = Map.copyOf(committed);
        }
    }

    /** A deadline passed. */
    public static class Timeout extends TaktException {
        private static final long serialVersionUID = 1L;

        public Timeout(String message) {
            super(message);
        }

        public Timeout(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /** The client, producer or consumer is closed. */
    public static class Closed extends TaktException {
        private static final long serialVersionUID = 1L;

        public Closed(String message) {
            super(message);
        }
    }

    /** An ERROR frame from taktd. */
    public static class ServerError extends TaktException {
        private static final long serialVersionUID = 1L;
        public final ErrorCode code;
        public final int rawCode;
        public final int errno;
        public final boolean fatal;
        public final String channel;
        public final String serverMessage;

        public ServerError(int rawCode, int errno, boolean fatal, String channel, String message) {
            super(format(rawCode, errno, fatal, channel, message));
            this.code = ErrorCode.of(rawCode);
            this.rawCode = rawCode;
            this.errno = errno;
            this.fatal = fatal;
            this.channel = channel;
            this.serverMessage = message;
        }

        private static String format(int code, int errno, boolean fatal, String channel, String message) {
            ErrorCode c = ErrorCode.of(code);
            return (message.isEmpty() ? c.name() : message) + " (" + (c == ErrorCode.UNKNOWN ? "code " + code : c.name())
                    + (errno != 0 ? ", errno " + errno : "") + (fatal ? ", fatal" : "")
                    + (channel != null ? ", channel " + channel : "") + ")";
        }

        /** The exception for an ERROR frame: a subclass for the codes that have one. */
        public static ServerError of(int code, int errno, boolean fatal, String channel, String message) {
            switch (ErrorCode.of(code)) {
                case DENIED: return new Denied(code, errno, fatal, channel, message);
                case NOENT: return new NoSuchChannel(code, errno, fatal, channel, message);
                case ACCESS: return new AccessDenied(code, errno, fatal, channel, message);
                case EXISTS: return new ChannelExists(code, errno, fatal, channel, message);
                case BUSY: return new Busy(code, errno, fatal, channel, message);
                case SLOW_CONSUMER: return new SlowConsumer(code, errno, fatal, channel, message);
                case MSGSIZE: return new MessageTooLarge(code, errno, fatal, channel, message);
                case INVALID: return new InvalidArgument(code, errno, fatal, channel, message);
                default: return new ServerError(code, errno, fatal, channel, message);
            }
        }
    }

    /** DENIED: the access policy refuses this uid (HELLO, fatal) or this role on this channel (ATTACH). */
    public static class Denied extends ServerError {
        private static final long serialVersionUID = 1L;
        Denied(int c, int e, boolean f, String ch, String m) { super(c, e, f, ch, m); }
    }

    /** NOENT: no such channel. */
    public static class NoSuchChannel extends ServerError {
        private static final long serialVersionUID = 1L;
        NoSuchChannel(int c, int e, boolean f, String ch, String m) { super(c, e, f, ch, m); }
    }

    /** ACCESS: the channel's file mode does not admit taktd's uid. */
    public static class AccessDenied extends ServerError {
        private static final long serialVersionUID = 1L;
        AccessDenied(int c, int e, boolean f, String ch, String m) { super(c, e, f, ch, m); }
    }

    /** EXISTS: CREATE with EXCL and the channel exists. */
    public static class ChannelExists extends ServerError {
        private static final long serialVersionUID = 1L;
        ChannelExists(int c, int e, boolean f, String ch, String m) { super(c, e, f, ch, m); }
    }

    /** BUSY: a live consumer holds the channel, or every lane is held. */
    public static class Busy extends ServerError {
        private static final long serialVersionUID = 1L;
        Busy(int c, int e, boolean f, String ch, String m) { super(c, e, f, ch, m); }
    }

    /** SLOW_CONSUMER: disconnected for exceeding the queue limit. */
    public static class SlowConsumer extends ServerError {
        private static final long serialVersionUID = 1L;
        SlowConsumer(int c, int e, boolean f, String ch, String m) { super(c, e, f, ch, m); }
    }

    /** INVALID: bad name, geometry or record type. */
    public static class InvalidArgument extends ServerError {
        private static final long serialVersionUID = 1L;
        InvalidArgument(int c, int e, boolean f, String ch, String m) { super(c, e, f, ch, m); }
    }

    /** MSGSIZE: a record above max_record, or a channel whose records do not fit a frame. */
    public static class MessageTooLarge extends ServerError {
        private static final long serialVersionUID = 1L;
        MessageTooLarge(int c, int e, boolean f, String ch, String m) { super(c, e, f, ch, m); }
    }

    /**
     * Thrown by the client before sending a record above the channel's max_record
     * (from ATTACHED): nothing was sent and the connection stays usable.
     */
    public static class RecordTooLarge extends MessageTooLarge {
        private static final long serialVersionUID = 1L;
        public final int size;
        public final int maxRecord;

        public RecordTooLarge(int size, int maxRecord, String channel) {
            super(ErrorCode.MSGSIZE.code, 90 /* EMSGSIZE */, false, channel,
                    "record of " + size + " bytes exceeds the channel's max_record " + maxRecord);
            this.size = size;
            this.maxRecord = maxRecord;
        }
    }
}
