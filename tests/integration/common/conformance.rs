//! A fixture upstream for the official conformance suite: the tools,
//! resources and prompts its server scenarios call by name, with the
//! answers they check, served over Streamable HTTP. The suite then runs
//! through the control plane, so what it judges is the gateway. The
//! multi round-trip items of the 2026-07-28 revision are in
//! [`conformance_mrtr`], its tasks in [`conformance_tasks`], the stateless
//! scenario's diagnostic tools in [`conformance_stateless`].

use std::time::Duration;

use rmcp::model::SubscriptionFilter;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams, ClientResult,
    CompleteRequestParams, CompleteResult, CompletionInfo, GetPromptRequestParams,
    GetPromptResponse, GetPromptResult, GetTaskParams, GetTaskResult, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, LoggingLevel,
    LoggingMessageNotificationParam, PaginatedRequestParams, ProgressNotificationParam,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, ServerCapabilities,
    ServerConfig, ServerRequest, SetLevelRequestParams, SubscribeRequestParams,
    UnsubscribeRequestParams, UpdateTaskParams,
};
use rmcp::service::{RequestContext, SubscriptionContext};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{conformance_mrtr, conformance_stateless, conformance_tasks};

const IMAGE: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
const AUDIO: &str = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=";

/// Every tool the scenarios call, with its input schema.
pub const TOOLS: &[&str] = &[
    "json_schema_2020_12_tool",
    "test_audio_content",
    "test_elicitation",
    "test_elicitation_sep1034_defaults",
    "test_elicitation_sep1330_enums",
    "test_embedded_resource",
    "test_error_handling",
    "test_image_content",
    "test_multiple_content_types",
    "test_param_headers",
    "test_sampling",
    "test_simple_text",
    "test_tool_with_logging",
    "test_tool_with_progress",
];

pub const PROMPTS: &[&str] = &[
    "test_prompt_with_arguments",
    "test_prompt_with_embedded_resource",
    "test_prompt_with_image",
    "test_simple_prompt",
];

pub fn from<T: DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("fixture JSON matches the MCP schema")
}

pub fn text(text: impl Into<String>) -> CallToolResult {
    from(json!({ "content": [{ "type": "text", "text": text.into() }] }))
}

fn input_schema(tool: &str) -> Value {
    let string = |description: &str| json!({ "type": "string", "description": description });
    match tool {
        // With the broader vocabulary of SEP-2106: an anchor, composition
        // and conditional keywords.
        "json_schema_2020_12_tool" => json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "$defs": { "address": { "$anchor": "addressDef", "type": "object", "properties": { "street": { "type": "string" }, "city": { "type": "string" } } } },
            "properties": {
                "name": { "type": "string" }, "address": { "$ref": "#/$defs/address" },
                "contactMethod": { "type": "string", "enum": ["phone", "email"] },
                "phone": { "type": "string" }, "email": { "type": "string" }
            },
            "allOf": [{ "anyOf": [{ "required": ["phone"] }, { "required": ["email"] }] }],
            "if": { "properties": { "contactMethod": { "const": "phone" } }, "required": ["contactMethod"] },
            "then": { "required": ["phone"] },
            "else": { "required": ["email"] },
            "additionalProperties": false
        }),
        "test_sampling" => {
            json!({ "type": "object", "properties": { "prompt": string("The prompt to send to the LLM") }, "required": ["prompt"] })
        }
        "test_elicitation" => {
            json!({ "type": "object", "properties": { "message": string("The message to show the user") }, "required": ["message"] })
        }
        // SEP-2243: `region` travels in an `Mcp-Param-Region` header too.
        "test_param_headers" => json!({ "type": "object", "properties": {
            "region": { "type": "string", "x-mcp-header": "Region" } } }),
        "greet" => json!({ "type": "object", "properties": { "name": string("Whom to greet") } }),
        "slow_compute" => json!({ "type": "object", "properties": {
            "seconds": { "type": "number", "description": "How long the computation takes" },
            "label": string("What to call the result") } }),
        _ => json!({ "type": "object", "properties": {} }),
    }
}

fn elicitation_schema(tool: &str) -> Value {
    match tool {
        "test_elicitation_sep1034_defaults" => json!({
            "type": "object",
            "properties": {
                "name": { "type": "string", "description": "User name", "default": "John Doe" },
                "age": { "type": "integer", "description": "User age", "default": 30 },
                "score": { "type": "number", "description": "User score", "default": 95.5 },
                "status": { "type": "string", "description": "User status", "enum": ["active", "inactive", "pending"], "default": "active" },
                "verified": { "type": "boolean", "description": "Verification status", "default": true }
            },
            "required": []
        }),
        "test_elicitation_sep1330_enums" => json!({
            "type": "object",
            "properties": {
                "untitledSingle": { "type": "string", "description": "Select one option", "enum": ["option1", "option2", "option3"] },
                "titledSingle": { "type": "string", "description": "Select one option with titles", "oneOf": [
                    { "const": "value1", "title": "First Option" }, { "const": "value2", "title": "Second Option" }, { "const": "value3", "title": "Third Option" }] },
                "legacyEnum": { "type": "string", "description": "Select one option (legacy)", "enum": ["opt1", "opt2", "opt3"], "enumNames": ["Option One", "Option Two", "Option Three"] },
                "untitledMulti": { "type": "array", "description": "Select multiple options", "minItems": 1, "maxItems": 3,
                    "items": { "type": "string", "enum": ["option1", "option2", "option3"] } },
                "titledMulti": { "type": "array", "description": "Select multiple options with titles", "minItems": 1, "maxItems": 3,
                    "items": { "anyOf": [{ "const": "value1", "title": "First Choice" }, { "const": "value2", "title": "Second Choice" }, { "const": "value3", "title": "Third Choice" }] } }
            },
            "required": []
        }),
        _ => {
            json!({ "type": "object", "properties": { "response": { "type": "string", "description": "User's response" } }, "required": ["response"] })
        }
    }
}

#[derive(Clone, Default)]
pub struct ConformanceFixture;

impl ConformanceFixture {
    async fn ask(context: &RequestContext<RoleServer>, request: Value) -> Result<Value, String> {
        let request: ServerRequest = from(request);
        match context.peer.send_request(request).await {
            Ok(ClientResult::CreateMessageResult(result)) => {
                Ok(serde_json::to_value(result).unwrap())
            }
            Ok(ClientResult::ElicitResult(result)) => Ok(serde_json::to_value(result).unwrap()),
            Ok(other) => Err(format!("unexpected answer {other:?}")),
            Err(error) => Err(error.to_string()),
        }
    }
}

impl ServerHandler for ConformanceFixture {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .enable_resources()
            .enable_resources_subscribe()
            .enable_prompts()
            .enable_prompts_list_changed()
            .enable_logging()
            .enable_completions()
            .enable_tasks()
            .build();
        ServerConfig::new(capabilities)
    }

    async fn list_tools(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let tools = (TOOLS.iter())
            .chain(conformance_mrtr::TOOLS)
            .chain(conformance_tasks::TOOLS)
            .chain(conformance_stateless::STATELESS_TOOLS)
            .chain(conformance_stateless::SESSION_TOOLS)
            .chain(conformance_stateless::dynamic_tool().then_some(&conformance_stateless::DYNAMIC_TOOL))
            .map(|name| {
                let mut tool = json!({ "name": name, "description": format!("Conformance fixture {name}"), "inputSchema": input_schema(name) });
                if conformance_tasks::TOOLS.contains(name) {
                    tool["execution"] = json!({ "taskSupport": conformance_tasks::task_support(name) });
                }
                from(tool)
            })
            .collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let arguments = request.arguments.clone().unwrap_or_default();
        let argument = |key: &str| {
            arguments
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let result = match &*request.name {
            "test_simple_text" => text("This is a simple text response for testing."),
            "test_image_content" => from(
                json!({ "content": [{ "type": "image", "data": IMAGE, "mimeType": "image/png" }] }),
            ),
            "test_audio_content" => from(
                json!({ "content": [{ "type": "audio", "data": AUDIO, "mimeType": "audio/wav" }] }),
            ),
            "test_embedded_resource" => {
                from(json!({ "content": [{ "type": "resource", "resource": {
                "uri": "test://embedded-resource", "mimeType": "text/plain", "text": "This is an embedded resource content." } }] }))
            }
            "test_multiple_content_types" => from(json!({ "content": [
                { "type": "text", "text": "Multiple content types test:" },
                { "type": "image", "data": IMAGE, "mimeType": "image/png" },
                { "type": "resource", "resource": { "uri": "test://mixed-content-resource", "mimeType": "application/json",
                    "text": json!({ "test": "data", "value": 123 }).to_string() } }] })),
            "test_tool_with_logging" => {
                for message in [
                    "Tool execution started",
                    "Tool processing data",
                    "Tool execution completed",
                ] {
                    let log =
                        LoggingMessageNotificationParam::new(LoggingLevel::Info, json!(message));
                    let _ = context.peer.notify_logging_message(log).await;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                text("Tool with logging executed successfully")
            }
            "test_tool_with_progress" => {
                let token = context.meta.get_progress_token();
                if let Some(token) = &token {
                    for step in [0.0, 50.0, 100.0] {
                        let progress = ProgressNotificationParam::new(token.clone(), step)
                            .with_total(100.0)
                            .with_message(format!("Completed step {step} of 100"));
                        let _ = context.peer.notify_progress(progress).await;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
                text(
                    token
                        .map(|t| serde_json::to_value(t).unwrap().to_string())
                        .unwrap_or_default(),
                )
            }
            "test_error_handling" => from(
                json!({ "content": [{ "type": "text", "text": "This tool intentionally returns an error for testing" }], "isError": true }),
            ),
            "test_sampling" => {
                let asked = Self::ask(&context, json!({ "method": "sampling/createMessage", "params": {
                    "messages": [{ "role": "user", "content": { "type": "text", "text": argument("prompt") } }], "maxTokens": 100 } })).await;
                match asked {
                    Ok(answer) => text(format!(
                        "LLM response: {}",
                        answer["content"]["text"].as_str().unwrap_or("No response")
                    )),
                    Err(error) => text(format!("Sampling not supported or error: {error}")),
                }
            }
            name @ ("test_elicitation"
            | "test_elicitation_sep1034_defaults"
            | "test_elicitation_sep1330_enums") => {
                let message = if name == "test_elicitation" {
                    argument("message")
                } else {
                    "Please fill in the form".to_string()
                };
                let asked = Self::ask(&context, json!({ "method": "elicitation/create", "params": {
                    "mode": "form", "message": message, "requestedSchema": elicitation_schema(name) } })).await;
                match asked {
                    Ok(answer) => text(format!(
                        "User response: action={}, content={}",
                        answer["action"].as_str().unwrap_or_default(),
                        answer.get("content").cloned().unwrap_or(json!({}))
                    )),
                    Err(error) => text(format!("Elicitation not supported or error: {error}")),
                }
            }
            "json_schema_2020_12_tool" => text(format!(
                "JSON Schema 2020-12 tool called with: {}",
                Value::Object(arguments.clone())
            )),
            name if conformance_stateless::STATELESS_TOOLS.contains(&name)
                || conformance_stateless::SESSION_TOOLS.contains(&name) =>
            {
                return conformance_stateless::call(&request, &context).await;
            }
            conformance_stateless::DYNAMIC_TOOL => text("A tool that comes and goes."),
            "test_param_headers" => text(format!("Region: {}", argument("region"))),
            name if conformance_tasks::TOOLS.contains(&name) => {
                return conformance_tasks::call(&request, &context);
            }
            _ => return conformance_mrtr::call(&request, &context),
        };
        Ok(result.into())
    }

    async fn list_resources(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let resources = [
            ("test://static-text", "static-text", "text/plain"),
            ("test://static-binary", "static-binary", "image/png"),
            ("test://watched-resource", "watched-resource", "text/plain"),
        ]
        .map(|(uri, name, mime)| from(json!({ "uri": uri, "name": name, "mimeType": mime })))
        .to_vec();
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn list_resource_templates(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let template = from(
            json!({ "uriTemplate": "test://template/{id}/data", "name": "template", "mimeType": "application/json" }),
        );
        Ok(ListResourceTemplatesResult::with_all_items(vec![template]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let uri = request.uri;
        let contents = match uri.as_str() {
            "test://static-text" => {
                json!({ "uri": uri, "mimeType": "text/plain", "text": "This is the content of the static text resource." })
            }
            "test://static-binary" => json!({ "uri": uri, "mimeType": "image/png", "blob": IMAGE }),
            "test://watched-resource" => {
                json!({ "uri": uri, "mimeType": "text/plain", "text": "Watched resource content" })
            }
            _ => {
                let id = uri
                    .strip_prefix("test://template/")
                    .and_then(|rest| rest.strip_suffix("/data"))
                    .ok_or_else(|| {
                        // SEP-2164: invalid params, naming the URI.
                        ErrorData::invalid_params("Resource not found", Some(json!({ "uri": uri })))
                    })?;
                let data =
                    json!({ "id": id, "templateTest": true, "data": format!("Data for ID: {id}") });
                json!({ "uri": uri, "mimeType": "application/json", "text": data.to_string() })
            }
        };
        let result: ReadResourceResult = from(json!({ "contents": [contents] }));
        Ok(result.into())
    }

    async fn subscribe(
        &self,
        _: SubscribeRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        Ok(())
    }

    async fn unsubscribe(
        &self,
        _: UnsubscribeRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        Ok(())
    }

    async fn list_prompts(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let argument = |name: &str, description: &str| json!({ "name": name, "description": description, "required": true });
        let dynamic = conformance_stateless::dynamic_prompt()
            .then_some(&conformance_stateless::DYNAMIC_PROMPT);
        let prompts = (PROMPTS.iter().chain([&conformance_mrtr::PROMPT]).chain(dynamic))
            .map(|name| {
                let arguments = match *name {
                    "test_prompt_with_arguments" => json!([argument("arg1", "First test argument"), argument("arg2", "Second test argument")]),
                    "test_prompt_with_embedded_resource" => json!([argument("resourceUri", "URI of the resource to embed")]),
                    _ => json!([]),
                };
                from(json!({ "name": name, "description": format!("Conformance fixture {name}"), "arguments": arguments }))
            })
            .collect();
        Ok(ListPromptsResult::with_all_items(prompts))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        if request.name == conformance_mrtr::PROMPT {
            return Ok(conformance_mrtr::prompt(&request));
        }
        let args = request.arguments.unwrap_or_default();
        let arg = |key: &str| {
            args.get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let user = |content: Value| json!({ "role": "user", "content": content });
        let messages = match request.name.as_str() {
            "test_simple_prompt" => json!([user(
                json!({ "type": "text", "text": "This is a simple prompt for testing." })
            )]),
            "test_prompt_with_arguments" => json!([user(json!({ "type": "text",
                "text": format!("Prompt with arguments: arg1='{}', arg2='{}'", arg("arg1"), arg("arg2")) }))]),
            "test_prompt_with_embedded_resource" => json!([
                user(
                    json!({ "type": "resource", "resource": { "uri": arg("resourceUri"), "mimeType": "text/plain", "text": "Embedded resource content for testing." } })
                ),
                user(
                    json!({ "type": "text", "text": "Please process the embedded resource above." })
                )
            ]),
            conformance_stateless::DYNAMIC_PROMPT => json!([user(
                json!({ "type": "text", "text": "A prompt that comes and goes." })
            )]),
            "test_prompt_with_image" => json!([
                user(json!({ "type": "image", "data": IMAGE, "mimeType": "image/png" })),
                user(json!({ "type": "text", "text": "Please analyze the image above." }))
            ]),
            _ => return Err(ErrorData::invalid_params("unknown prompt", None)),
        };
        let result: GetPromptResult = from(json!({ "messages": messages }));
        Ok(result.into())
    }

    async fn complete(
        &self,
        _: CompleteRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        Ok(CompleteResult::new(
            CompletionInfo::new(Vec::new()).unwrap_or_default(),
        ))
    }

    fn accepted_subscription_filter(&self, _: &SubscriptionFilter) -> Option<SubscriptionFilter> {
        Some(
            SubscriptionFilter::builder()
                .tools_list_changed()
                .prompts_list_changed()
                .build(),
        )
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        conformance_stateless::listen(context).await
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        _: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        conformance_tasks::get(&request.task_id)
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        _: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        conformance_tasks::update(&request.task_id, &request.input_responses)
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        _: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        conformance_tasks::cancel(&request.task_id)
    }

    async fn set_level(
        &self,
        _: SetLevelRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        Ok(())
    }
}
