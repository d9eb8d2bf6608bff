//! The research server's resources, resource template, prompt and
//! completions: desk notes as `research://` resources and a briefing prompt.

use rmcp::ErrorData;
use rmcp::model::{
    ArgumentInfo, CompleteResult, CompletionInfo, GetPromptRequestParams, GetPromptResult, Prompt,
    PromptArgument, PromptMessage, ReadResourceResult, Resource, ResourceContents,
    ResourceTemplate, Role,
};

/// The desks research covers.
pub const DESKS: &[&str] = &["commodities", "equities", "fixed-income", "fx"];

pub fn resources() -> Vec<Resource> {
    let mut daily = Resource::new("research://notes/daily", "daily-note");
    daily.description = Some("Today's cross-desk research note".into());
    daily.mime_type = Some("text/plain".into());
    let mut limits = Resource::new("research://restricted/limits", "risk-limits");
    limits.description = Some("Risk limits per desk (restricted)".into());
    limits.mime_type = Some("text/plain".into());
    vec![daily, limits]
}

pub fn templates() -> Vec<ResourceTemplate> {
    let mut summary = ResourceTemplate::new("research://desks/{desk}/summary", "desk-summary");
    summary.description = Some("The research summary of one desk".into());
    summary.mime_type = Some("text/plain".into());
    vec![summary]
}

pub fn read(uri: &str) -> Result<ReadResourceResult, ErrorData> {
    let text = match uri {
        "research://notes/daily" => {
            "Daily note: rates steady, equities rotate into value, FX quiet.".to_string()
        }
        "research://restricted/limits" => {
            "Limits: equities 5M, fixed-income 8M, fx 3M, commodities 2M.".to_string()
        }
        _ => {
            let desk = uri
                .strip_prefix("research://desks/")
                .and_then(|rest| rest.strip_suffix("/summary"))
                .filter(|desk| DESKS.contains(desk))
                .ok_or_else(|| ErrorData::resource_not_found(format!("no resource {uri}"), None))?;
            format!("Summary for the {desk} desk: positioning neutral, conviction medium.")
        }
    };
    Ok(ReadResourceResult::new(vec![ResourceContents::text(
        text, uri,
    )]))
}

pub fn prompts() -> Vec<Prompt> {
    let desk = PromptArgument::new("desk")
        .with_description("The desk to brief, for example `equities`")
        .with_required(true);
    vec![Prompt::new(
        "desk_briefing",
        Some("A morning briefing request for one desk"),
        Some(vec![desk]),
    )]
}

pub fn get_prompt(request: &GetPromptRequestParams) -> Result<GetPromptResult, ErrorData> {
    if request.name != "desk_briefing" {
        return Err(ErrorData::invalid_params(
            format!("no prompt {}", request.name),
            None,
        ));
    }
    let desk = request
        .arguments
        .as_ref()
        .and_then(|args| args.get("desk"))
        .and_then(|desk| desk.as_str())
        .ok_or_else(|| ErrorData::invalid_params("missing argument `desk`", None))?;
    let text = format!(
        "Write a three-bullet morning briefing for the {desk} desk, citing research://desks/{desk}/summary."
    );
    Ok(
        GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
            .with_description(format!("Briefing for {desk}")),
    )
}

/// Desk names completing `argument` (the `desk` argument of the prompt or template).
pub fn complete(argument: &ArgumentInfo) -> CompleteResult {
    let values = if argument.name == "desk" {
        DESKS
            .iter()
            .filter(|desk| desk.starts_with(&argument.value))
            .map(|desk| desk.to_string())
            .collect()
    } else {
        Vec::new()
    };
    CompleteResult::new(CompletionInfo::new(values).unwrap_or_default())
}
