using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Fabric.Engine.Server;

/// <summary>A request the server refuses, answered in OpenAI's error shape with <see cref="Status"/>.</summary>
public sealed class OpenAiError : Exception
{
    public OpenAiError(int status, string message, string type = "invalid_request_error", string? param = null, string? code = null) : base(message)
    {
        Status = status;
        Type = type;
        Param = param;
        Code = code;
    }

    public int Status { get; }

    /// <summary>invalid_request_error, rate_limit_error, server_error, service_unavailable.</summary>
    public string Type { get; }

    /// <summary>The request field at fault, when one is.</summary>
    public string? Param { get; }

    public string? Code { get; }

    public static OpenAiError BadField(string param, string message) => new(StatusCodes.Status400BadRequest, message, param: param);

    /// <summary>Writes <c>{"error": {"message", "type", "param", "code"}}</c>.</summary>
    public void WriteTo(Utf8JsonWriter json)
    {
        json.WriteStartObject();
        json.WriteStartObject("error");
        json.WriteString("message", Message);
        json.WriteString("type", Type);
        WriteNullable(json, "param", Param);
        WriteNullable(json, "code", Code);
        json.WriteEndObject();
        json.WriteEndObject();
    }

    public async Task WriteAsync(HttpResponse response)
    {
        response.StatusCode = Status;
        response.ContentType = "application/json";
        if (Status == StatusCodes.Status503ServiceUnavailable || Status == StatusCodes.Status429TooManyRequests)
            response.Headers.RetryAfter = "1";
        await using var json = new Utf8JsonWriter(response.Body, JsonOutput.Options);
        WriteTo(json);
        await json.FlushAsync().ConfigureAwait(false);
    }

    private static void WriteNullable(Utf8JsonWriter json, string name, string? value)
    {
        if (value is null)
            json.WriteNull(name);
        else
            json.WriteString(name, value);
    }
}
