// Apache Iceberg's RESTCatalogServer (the server of the apache/iceberg-rest-fixture image), bound to one address.
//
// The fixture's own main() listens on every interface. This launcher builds the same thing from the
// fixture's own parts (its backend catalog from CATALOG_* environment variables, its request adapter,
// Iceberg's servlet, gzip) and binds Jetty to -Drest.host (default 127.0.0.1). Run it as a single source
// file: java -cp "<the jars of pom.xml>/*" LoopbackRESTCatalogServer.java
import java.lang.reflect.Constructor;
import java.lang.reflect.Method;
import java.util.Map;
import org.apache.iceberg.rest.RESTCatalogAdapter;
import org.apache.iceberg.rest.RESTCatalogServer;
import org.apache.iceberg.rest.RESTCatalogServlet;
import org.eclipse.jetty.compression.gzip.GzipCompression;
import org.eclipse.jetty.compression.server.CompressionHandler;
import org.eclipse.jetty.ee10.servlet.ServletContextHandler;
import org.eclipse.jetty.ee10.servlet.ServletHolder;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;

public class LoopbackRESTCatalogServer {
  public static void main(String[] args) throws Exception {
    String host = System.getProperty("rest.host", "127.0.0.1");

    // The fixture keeps these package-private; reflection reaches them from the class path.
    Constructor<RESTCatalogServer> fixtureConstructor = RESTCatalogServer.class.getDeclaredConstructor();
    fixtureConstructor.setAccessible(true);
    RESTCatalogServer fixture = fixtureConstructor.newInstance();
    Method initializeBackend = RESTCatalogServer.class.getDeclaredMethod("initializeBackendCatalog");
    initializeBackend.setAccessible(true);
    Object catalogContext = initializeBackend.invoke(fixture);

    Method configuration = catalogContext.getClass().getDeclaredMethod("configuration");
    configuration.setAccessible(true);
    @SuppressWarnings("unchecked")
    Map<String, String> properties = (Map<String, String>) configuration.invoke(catalogContext);
    int port = Integer.parseInt(properties.getOrDefault(RESTCatalogServer.REST_PORT, "8181"));

    Class<?> adapterClass = Class.forName("org.apache.iceberg.rest.RESTServerCatalogAdapter");
    Constructor<?> adapterConstructor = adapterClass.getDeclaredConstructor(catalogContext.getClass());
    adapterConstructor.setAccessible(true);
    RESTCatalogAdapter adapter = (RESTCatalogAdapter) adapterConstructor.newInstance(catalogContext);

    ServletContextHandler context = new ServletContextHandler(ServletContextHandler.NO_SESSIONS);
    context.addServlet(new ServletHolder(new RESTCatalogServlet(adapter)), "/*");
    CompressionHandler compression = new CompressionHandler();
    compression.putCompression(new GzipCompression());
    context.insertHandler(compression);

    Server server = new Server();
    ServerConnector connector = new ServerConnector(server);
    connector.setHost(host);
    connector.setPort(port);
    server.addConnector(connector);
    server.setHandler(context);
    server.start();
    System.out.println("REST catalog listening on http://" + host + ":" + port + "/");
    server.join();
  }
}
