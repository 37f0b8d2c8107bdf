// SPDX-License-Identifier: MIT
// Consume a takt channel through taktd and print each record.
//
//   java -cp build/tools/java/takt-peer.jar tools/java/examples/Consume.java \
//        [--socket PATH] [--count N] [--timeout SECONDS] CHANNEL
import io.takt.peer.Consumer;
import io.takt.peer.TaktClient;
import io.takt.peer.TaktException;
import io.takt.peer.TaktRecord;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;

public class Consume {
    public static void main(String[] args) {
        Path socket = TaktClient.defaultSocketPath();
        long count = 0;
        Duration timeout = null;
        String channel = null;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--socket": socket = Path.of(args[++i]); break;
                case "--count": count = Long.parseLong(args[++i]); break;
                case "--timeout": timeout = Duration.ofMillis((long) (Double.parseDouble(args[++i]) * 1000)); break;
                default: channel = args[i];
            }
        }
        if (channel == null) {
            System.err.println("usage: Consume [--socket PATH] [--count N] [--timeout SECONDS] CHANNEL");
            System.exit(2);
        }
        try (TaktClient client = TaktClient.connect(socket); Consumer c = client.openConsumer(channel)) {
            for (long n = 0; count == 0 || n < count; n++) {
                TaktRecord r = c.receive(timeout);
                if (r == null)
                    break;
                System.out.println("#" + r.index() + " type " + Integer.toUnsignedString(r.type()) + ": "
                        + new String(r.data(), StandardCharsets.UTF_8));
            }
        } catch (TaktException e) {
            System.err.println("Consume: " + e.getMessage());
            System.exit(1);
        }
    }
}
