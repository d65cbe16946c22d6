using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using Fabric.Cli;
using Fabric.Common;
using Fabric.Pool.Server.Bank;
using Fabric.Pool.Server.Serving;
using Fabric.Transport;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Fabric.Pool;

/// <summary>
/// <c>serve --model DIR | --image FILE | --model DIR --image-cache DIR [--listen URI]... [--shm PATH] [--tokens FILE] [--metrics URL] [--numa-node N]
/// [--drain-timeout DURATION]</c>: loads the bank, then serves it until SIGTERM, draining sessions for at most the
/// drain timeout. Every problem found before serving is one sentence and a non-zero exit.
/// </summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var model = new Option<string?>("--model") { Description = "Checkpoint directory (config.json + *.safetensors)." };
        var image = new Option<string?>("--image") { Description = "Serve this bank image (fabric pool convert) mapped in place; on /dev/shm or a DAX device it is served as shm too." };
        var imageCache = new Option<string?>("--image-cache") { Description = "Convert --model into an image in this directory on first start, and map that image afterwards." };
        var listen = new Option<string[]>("--listen") { Description = "Endpoint to serve on (repeatable); port 0 picks a free port.", DefaultValueFactory = _ => ["tcp://127.0.0.1:7100"] };
        var shm = new Option<string?>("--shm") { Description = "Place the bank in a shared-memory file (/dev/shm/NAME) or DAX device (/dev/daxX.Y) and serve it as shm://PATH too." };
        var tokens = new Option<string?>("--tokens") { Description = "Tenants file: one name:secret a line. Without it every client is tenant 'default'." };
        var metrics = new Option<string?>("--metrics") { Description = "Serve /metrics (Prometheus) and /healthz at this http://HOST:PORT (port 0 allowed)." };
        var numa = new Option<int?>("--numa-node") { Description = "Bind the bank's memory to this NUMA node (libnuma); a CXL expander is a CPU-less node." };
        var transport = TransportOption.Create("--listen");
        var maxRegion = new Option<long>("--max-region-bytes") { Description = "Largest expert region in bytes.", DefaultValueFactory = _ => BankLayout.DefaultMaxRegionBytes };
        var drain = new Option<string>("--drain-timeout") { Description = "On SIGTERM, how long sessions may finish their work before they are dropped (10s, 500ms, 2m; a bare number is seconds).", DefaultValueFactory = _ => "10s" };

        var command = new Command("serve", "Load a checkpoint into an expert bank and serve it to engines.");
        foreach (var option in new Option[] { model, image, imageCache, listen, transport, shm, tokens, metrics, numa, maxRegion, drain }.Concat(ServeDiscovery.Options))
            command.Options.Add(option);
        command.SetAction((ParseResult r, CancellationToken ct) => ConsoleErrors.RunAsync("fabric-pool", () => RunAsync(
            new ServeBankSource(r.GetValue(model), r.GetValue(image), r.GetValue(imageCache)), ServeDiscovery.Parse(r), TransportOption.Apply(r.GetValue(transport), r.GetValue(listen) ?? [], "fabric-pool"), r.GetValue(shm), r.GetValue(tokens), r.GetValue(metrics), r.GetValue(numa), r.GetValue(maxRegion), r.GetValue(drain)!, ct)));
        return command;
    }

    private static async Task<int> RunAsync(ServeBankSource source, ServeDiscovery discovery, FabricEndpoint[] listen, string? shmPath, string? tokensPath, string? metricsUrl, int? numaNode, long maxRegionBytes, string drainText, CancellationToken cancellationToken)
    {
        // Everything a person can get wrong is checked before any memory is filled or port bound.
        var endpoints = listen.ToList();
        if (endpoints.FirstOrDefault(e => e.Scheme == "shm") is { } stray)
            throw new EndpointException($"{stray} cannot be given to --listen; use --shm {stray.Path} to place the bank in shared memory and serve it there.");
        source.Check(shmPath, numaNode, discovery.HoldsExpert is not null);
        if ((shmPath ?? source.InPlaceShmPath) is { } shmServed)
            endpoints.Add(FabricEndpoint.Parse("shm://" + shmServed));
        if (maxRegionBytes < BankLayout.Alignment)
            throw new FabricException($"--max-region-bytes {maxRegionBytes}: give at least {BankLayout.Alignment} (one aligned page).");
        var drainTimeout = ParseDuration(drainText) is { } parsed && parsed > TimeSpan.Zero
            ? parsed
            : throw new FabricException($"--drain-timeout '{drainText}' is not a positive duration; give one such as 10s, 500ms or 2m.");
        var metricsUri = metricsUrl is null ? null : ParseMetrics(metricsUrl);
        if (metricsUri is not null)
            EnsureMetricsPortFree(metricsUri);
        var tenants = tokensPath is null ? null : TenantTable.Load(tokensPath);
        if (numaNode is { } node)
        {
            try
            {
                NumaPlacement.EnsureNode(node);
            }
            catch (FabricException e)
            {
                throw new FabricException($"--numa-node {node}: {e.Message.TrimEnd('.')}; leave out --numa-node to place the bank in ordinary host memory.", e);
            }
        }
        var bank = source.Open(shmPath, numaNode, maxRegionBytes, discovery.HoldsExpert);
        List<IFabricServer> servers = [];
        try
        {
            var handler = new PoolControlHandler(bank.Catalog, tenants, FabricLogging.Factory.CreateLogger("fabric-pool.tenants"));
            var metrics = new PoolMetrics(bank, handler);
            metrics.DescribeShard(discovery.Shard, discovery.Shards, discovery.Replicas);
            servers = await PoolService.StartServersAsync(endpoints, bank, handler, metrics, cancellationToken).ConfigureAwait(false);
            var registrar = await discovery.RegisterAsync(source.ModelName, source.Fingerprint, servers, cancellationToken).ConfigureAwait(false);
            using var host = BuildHost(metricsUri, metrics, new PoolService(bank, servers, drainTimeout, registrar), drainTimeout);
            await host.StartAsync(cancellationToken).ConfigureAwait(false);

            foreach (var server in servers)
                Console.WriteLine($"listening {server.Endpoint}");
            if (metricsUri is not null)
                Console.WriteLine($"metrics {BoundUrl(host, metricsUri)}/metrics");
            Console.Out.Flush();

            await host.WaitForShutdownAsync(CancellationToken.None).ConfigureAwait(false);
            return 0;
        }
        catch
        {
            foreach (var server in servers)
                await server.DisposeAsync().ConfigureAwait(false);
            bank.Dispose();
            throw;
        }
    }

    /// <summary>A duration such as 10s, 500ms or 2m; a bare number is seconds. Null when it is not one.</summary>
    private static TimeSpan? ParseDuration(string text) =>
        DurationText.TryParseNanoseconds(text, 1e9, out var ns) && ns / 1e9 <= TimeSpan.MaxValue.TotalSeconds / 2
            ? TimeSpan.FromSeconds(ns / 1e9)
            : null;

    /// <summary>
    /// A metrics port already taken is found before the bank is placed in shared memory, so that such a start changes
    /// nothing on disk. Host names other than localhost are left to the web host to resolve.
    /// </summary>
    private static void EnsureMetricsPortFree(Uri uri)
    {
        if (uri.Port == 0)
            return;
        var address = uri.IsLoopback && uri.HostNameType == UriHostNameType.Dns ? IPAddress.Loopback
            : IPAddress.TryParse(uri.Host.Trim('[', ']'), out var parsed) ? parsed
            : null;
        if (address is null)
            return;
        var probe = new TcpListener(address, uri.Port);
        try
        {
            probe.Start();
        }
        catch (SocketException e)
        {
            throw new EndpointException($"--metrics {uri.GetLeftPart(UriPartial.Authority)}: cannot listen there ({e.Message.TrimEnd('.')}).", e);
        }
        finally
        {
            probe.Stop();
        }
    }

    private static Uri ParseMetrics(string text)
    {
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || uri.Scheme != "http" || uri.AbsolutePath != "/")
            throw new EndpointException($"'{text}' is not a metrics address; expected http://HOST:PORT, such as http://127.0.0.1:9100.");
        return uri;
    }

    private static IHost BuildHost(Uri? metricsUri, PoolMetrics metrics, PoolService service, TimeSpan drainTimeout)
    {
        if (metricsUri is null)
        {
            var builder = Host.CreateApplicationBuilder([]);
            Configure(builder.Services, builder.Logging);
            return builder.Build();
        }

        var web = WebApplication.CreateSlimBuilder([]);
        web.WebHost.UseUrls($"http://{metricsUri.Authority}");
        Configure(web.Services, web.Logging);
        var app = web.Build();
        app.MapGet("/metrics", async (HttpContext context) =>
        {
            context.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            await metrics.WriteAsync(context.Response.Body, context.RequestAborted).ConfigureAwait(false);
        });
        app.MapGet("/healthz", () => Results.Text("ok\n"));
        return app;

        void Configure(IServiceCollection services, ILoggingBuilder logging)
        {
            logging.ClearProviders();
            services.AddSingleton<IHostedService>(service);
            // The service keeps its own drain deadline; the host's only covers releasing the bank after it.
            services.Configure<HostOptions>(o => o.ShutdownTimeout = drainTimeout + TimeSpan.FromSeconds(30));
        }
    }

    private static string BoundUrl(IHost host, Uri requested)
    {
        var addresses = host.Services.GetService<IServer>()?.Features.Get<IServerAddressesFeature>()?.Addresses;
        return addresses?.FirstOrDefault()?.TrimEnd('/') ?? $"http://{requested.Authority}";
    }
}
