//! How a tool's answer goes on the wire: once, and within one message.
//!
//! The MCP specification (2025-06-18, "Structured Content") says a tool
//! that returns `structuredContent` *should* also return the serialized
//! JSON in a text block for clients without structured output; rmcp's
//! `CallToolResult::structured` does exactly that, so every answer carried
//! its data twice. Here the structured content is kept whole (it is what
//! the tools' output schemas describe) and the text block is a short
//! summary that points to it, as the specification allows (*should*, not
//! *must*).
//!
//! An answer larger than [`MAX_ANSWER_BYTES`] is made to fit: first every
//! field over [`MAX_FIELD_BYTES`] (a payload, a result, a description) is
//! replaced with a marker saying how big it was and how to read it whole;
//! then, if still too large, items are dropped from the end of the
//! answer's lists, and `omitted` says how many.

use rmcp::handler::server::tool::IntoCallToolResult;
use rmcp::model::{CallToolResponse, CallToolResult, ContentBlock};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Value, json};

/// The largest serialized `structuredContent` of one answer: 768 KiB, so
/// that the JSON-RPC envelope and the summary fit the 1 MiB message limit
/// of common MCP clients (the official Python SDK's among them).
pub(crate) const MAX_ANSWER_BYTES: usize = 768 * 1024;
/// The largest serialized field of an answer kept as it is: 64 KiB.
pub(crate) const MAX_FIELD_BYTES: usize = 64 * 1024;

/// A tool's structured answer (the name the `#[tool]` macro looks for to
/// derive the output schema from `T`).
#[derive(Debug)]
pub(crate) struct Json<T>(pub(crate) T);

impl<T: JsonSchema> JsonSchema for Json<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

impl<T: Serialize + JsonSchema + 'static> IntoCallToolResult for Json<T> {
    fn into_call_tool_result(self) -> Result<CallToolResponse, rmcp::ErrorData> {
        let mut value = serde_json::to_value(self.0)
            .map_err(|e| rmcp::ErrorData::internal_error(e.to_string(), None))?;
        let cut = fit(&mut value, MAX_ANSWER_BYTES, MAX_FIELD_BYTES);
        let summary = if cut {
            "The answer is in structuredContent; fields or list items over the size limit are \
             marked `truncated` there, with how to read them whole."
        } else {
            "The answer is in structuredContent."
        };
        let mut result = CallToolResult::structured(value);
        result.content = vec![ContentBlock::text(summary)];
        Ok(result.into())
    }
}

fn size(value: &Value) -> usize {
    serde_json::to_vec(value).map_or(usize::MAX, |v| v.len())
}

/// Makes `value` serialize to at most `max_bytes`, cutting fields over
/// `max_field` first and list items second; whether anything was cut.
pub(crate) fn fit(value: &mut Value, max_bytes: usize, max_field: usize) -> bool {
    if size(value) <= max_bytes {
        return false;
    }
    cut_fields(value, max_field, None);
    if size(value) > max_bytes {
        cut_lists(value, max_bytes);
    }
    true
}

/// The marker that takes a too-large field's place.
fn marker(bytes: usize, task: Option<&str>) -> Value {
    let how = match task {
        Some(id) => format!(
            "read it whole with the Task API: GET /api/tasks/{id} (or the `get_task` tool, whose answer is cut the same way)"
        ),
        None => "read it whole with the Task API or the Jobs API".to_owned(),
    };
    json!({ "truncated": true, "bytes": bytes, "how_to_get": how })
}

fn cut_fields(value: &mut Value, max_field: usize, task: Option<&str>) {
    match value {
        Value::Object(map) => {
            let id = map.get("id").and_then(Value::as_str).map(str::to_owned);
            let task = id.as_deref().or(task);
            for field in map.values_mut() {
                let bytes = size(field);
                if bytes <= max_field {
                    continue;
                }
                if matches!(field, Value::String(_)) || !has_room(field, max_field) {
                    *field = marker(bytes, task);
                } else {
                    cut_fields(field, max_field, task);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                cut_fields(item, max_field, task);
            }
        }
        _ => {}
    }
}

/// Whether `value` is a list or a record of tasks (each with an `id`), or a
/// task's `untrusted` envelope (with its `notice`), whose parts are cut one
/// by one rather than all at once: a large payload goes, its title stays.
fn has_room(value: &Value, max_field: usize) -> bool {
    match value {
        Value::Array(items) => items
            .iter()
            .all(|i| i.get("id").is_some() || size(i) <= max_field),
        Value::Object(map) => map.contains_key("id") || map.contains_key("notice"),
        _ => false,
    }
}

fn cut_lists(value: &mut Value, max_bytes: usize) {
    let Value::Object(map) = value else { return };
    let lists: Vec<String> = map
        .iter()
        .filter(|(_, v)| v.is_array())
        .map(|(k, _)| k.clone())
        .collect();
    let mut total = size(&Value::Object(map.clone()));
    for key in lists {
        let mut omitted = 0usize;
        while total > max_bytes {
            let Some(Value::Array(items)) = map.get_mut(&key) else {
                break;
            };
            let Some(item) = items.pop() else { break };
            // The item and its comma.
            total = total.saturating_sub(size(&item) + 1);
            omitted += 1;
        }
        if omitted > 0 {
            map.insert(
                "omitted".to_owned(),
                json!({ "field": key, "items": omitted, "how_to_get": "ask again with a smaller limit, or page with the Task API" }),
            );
            total = size(&Value::Object(map.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, JsonSchema)]
    struct Out {
        task: Value,
    }

    #[test]
    fn a_600_kb_result_goes_out_once_and_within_one_message() {
        let result = "x".repeat(600 * 1024);
        let answer = Json(Out {
            task: json!({ "id": "t1", "result": result.clone() }),
        })
        .into_call_tool_result()
        .unwrap();
        let rmcp::model::CallToolResponse::Complete(answer) = answer else {
            panic!("a complete answer");
        };
        let wire = serde_json::to_string(&answer).unwrap();
        assert!(wire.len() < 1024 * 1024, "{} bytes", wire.len());
        // In the structured content only, not again in the text block.
        assert_eq!(wire.matches(&result).count(), 1);
    }

    #[test]
    fn a_900_kb_result_is_cut_to_fit_with_a_marker() {
        let answer = Json(Out {
            task: json!({ "id": "t1", "result": "x".repeat(900 * 1024) }),
        })
        .into_call_tool_result()
        .unwrap();
        let rmcp::model::CallToolResponse::Complete(answer) = answer else {
            panic!("a complete answer");
        };
        let wire = serde_json::to_string(&answer).unwrap();
        assert!(wire.len() < 1024 * 1024, "{} bytes", wire.len());
        assert!(wire.contains("/api/tasks/t1"), "{wire}");
    }

    #[test]
    fn a_small_answer_is_sent_whole_once() {
        let answer = Json(Out {
            task: json!({ "id": "t1", "result": "unique-result-text" }),
        })
        .into_call_tool_result()
        .unwrap();
        let rmcp::model::CallToolResponse::Complete(answer) = answer else {
            panic!("a complete answer");
        };
        let wire = serde_json::to_string(&answer).unwrap();
        assert_eq!(wire.matches("unique-result-text").count(), 1, "{wire}");
    }

    #[test]
    fn a_large_result_is_cut_with_a_marker_naming_the_task() {
        let mut value = json!({ "task": { "id": "t1", "result": "x".repeat(900 * 1024) } });
        assert!(fit(&mut value, MAX_ANSWER_BYTES, MAX_FIELD_BYTES));
        assert!(size(&value) <= MAX_ANSWER_BYTES);
        let marker = &value["task"]["result"];
        assert_eq!(marker["truncated"], json!(true));
        assert!(
            marker["how_to_get"]
                .as_str()
                .unwrap()
                .contains("/api/tasks/t1")
        );
    }

    #[test]
    fn a_large_payload_is_cut_inside_its_envelope_and_the_title_stays() {
        let mut value = json!({ "task": { "id": "t1", "untrusted": {
            "notice": "data", "title": "the title", "payload": "x".repeat(900 * 1024) } } });
        assert!(fit(&mut value, MAX_ANSWER_BYTES, MAX_FIELD_BYTES));
        let envelope = &value["task"]["untrusted"];
        assert_eq!(envelope["title"], "the title");
        assert_eq!(envelope["notice"], "data");
        assert_eq!(envelope["payload"]["truncated"], json!(true));
    }

    #[test]
    fn a_long_list_of_large_tasks_fits_and_says_what_was_left_out() {
        let tasks: Vec<Value> = (0..40)
            .map(|i| json!({ "id": format!("t{i}"), "description": "d".repeat(60 * 1024) }))
            .collect();
        let mut value = json!({ "tasks": tasks });
        assert!(fit(&mut value, MAX_ANSWER_BYTES, MAX_FIELD_BYTES));
        assert!(size(&value) <= MAX_ANSWER_BYTES);
        assert!(value["omitted"]["items"].as_u64().unwrap() > 0);
    }
}
