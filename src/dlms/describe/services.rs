//! GET, SET and ACTION requests and responses as text (Green Book DLMS UA 1000-2 Ed. 10, 9.5:
//! Get-Request/Response, Set-Request/Response, Action-Request/Response, with their block
//! forms of 9.3.7-9.3.9): invoke id, the attribute or method, values cut to a short line.

use super::value::{truncate, value_text, MAX_VALUE_TEXT};
use crate::dlms::axdr::Data;
use crate::dlms::xdlms::{
    ActionRequest, ActionResponse, AttributeDescriptor, DataAccessResult, DataBlockSa,
    GetDataResult, GetRequest, GetResponse, MethodDescriptor, SelectiveAccess, SetRequest,
    SetResponse,
};
use std::fmt::Write;

fn attribute_text(a: &AttributeDescriptor) -> String {
    format!(
        "class {} {} attribute {}",
        a.class_id, a.instance, a.attribute
    )
}

fn method_text(m: &MethodDescriptor) -> String {
    format!("class {} {} method {}", m.class_id, m.instance, m.method)
}

fn access_text(access: &Option<SelectiveAccess>) -> String {
    match access {
        None => String::new(),
        Some(s) => format!(
            " selective access {} {}",
            s.selector,
            value_text(&s.parameters)
        ),
    }
}

fn result_text(r: &DataAccessResult) -> String {
    r.to_string()
}

fn data_result_text(r: &GetDataResult) -> String {
    match r {
        Ok(d) => value_text(d),
        Err(e) => format!("error {}", result_text(e)),
    }
}

pub(super) fn get_request_text(g: &GetRequest) -> String {
    match g {
        GetRequest::Normal {
            invoke,
            attribute,
            access,
        } => format!(
            "GET-Request-Normal invoke {}: {}{}",
            invoke.invoke_id(),
            attribute_text(attribute),
            access_text(access)
        ),
        GetRequest::Next {
            invoke,
            block_number,
        } => format!(
            "GET-Request-Next invoke {}: block {block_number} received",
            invoke.invoke_id()
        ),
        GetRequest::WithList { invoke, items } => {
            let list: Vec<String> = items
                .iter()
                .map(|(a, s)| format!("{}{}", attribute_text(a), access_text(s)))
                .collect();
            format!(
                "GET-Request-With-List invoke {}: {} item(s): {}",
                invoke.invoke_id(),
                items.len(),
                list.join("; ")
            )
        }
    }
}

pub(super) fn get_response_text(g: &GetResponse) -> String {
    match g {
        GetResponse::Normal { invoke, result } => format!(
            "GET-Response-Normal invoke {}: {}",
            invoke.invoke_id(),
            data_result_text(result)
        ),
        GetResponse::WithDatablock {
            invoke,
            last_block,
            block_number,
            raw,
        } => {
            let body = match raw {
                Ok(raw) => format!("{} raw byte(s)", raw.len()),
                Err(e) => format!("error {}", result_text(e)),
            };
            format!(
                "GET-Response-With-Datablock invoke {}: block {block_number}{}, {body}",
                invoke.invoke_id(),
                if *last_block { " (last)" } else { "" }
            )
        }
        GetResponse::WithList { invoke, results } => {
            let list: Vec<String> = results.iter().map(data_result_text).collect();
            truncate(
                format!(
                    "GET-Response-With-List invoke {}: {} result(s): {}",
                    invoke.invoke_id(),
                    results.len(),
                    list.join("; ")
                ),
                4 * MAX_VALUE_TEXT,
            )
        }
    }
}

fn block_text(b: &DataBlockSa) -> String {
    format!(
        "block {}{}, {} raw byte(s)",
        b.block_number,
        if b.last_block { " (last)" } else { "" },
        b.raw_data.len()
    )
}

pub(super) fn set_request_text(s: &SetRequest) -> String {
    match s {
        SetRequest::Normal {
            invoke,
            attribute,
            access,
            value,
        } => format!(
            "SET-Request-Normal invoke {}: {}{} = {}",
            invoke.invoke_id(),
            attribute_text(attribute),
            access_text(access),
            value_text(value)
        ),
        SetRequest::WithFirstDatablock {
            invoke,
            attribute,
            access,
            block,
        } => format!(
            "SET-Request-With-First-Datablock invoke {}: {}{}, {}",
            invoke.invoke_id(),
            attribute_text(attribute),
            access_text(access),
            block_text(block)
        ),
        SetRequest::WithDatablock { invoke, block } => format!(
            "SET-Request-With-Datablock invoke {}: {}",
            invoke.invoke_id(),
            block_text(block)
        ),
    }
}

pub(super) fn set_response_text(s: &SetResponse) -> String {
    match s {
        SetResponse::Normal { invoke, result } => format!(
            "SET-Response-Normal invoke {}: {}",
            invoke.invoke_id(),
            result_text(result)
        ),
        SetResponse::Datablock {
            invoke,
            block_number,
        } => format!(
            "SET-Response-Datablock invoke {}: block {block_number}",
            invoke.invoke_id()
        ),
        SetResponse::LastDatablock {
            invoke,
            result,
            block_number,
        } => format!(
            "SET-Response-Last-Datablock invoke {}: block {block_number}, {}",
            invoke.invoke_id(),
            result_text(result)
        ),
    }
}

fn parameters_text(p: &Option<Data>) -> String {
    match p {
        None => String::new(),
        Some(d) => format!(" parameters {}", value_text(d)),
    }
}

pub(super) fn action_request_text(a: &ActionRequest) -> String {
    match a {
        ActionRequest::Normal {
            invoke,
            method,
            parameters,
        } => format!(
            "ACTION-Request-Normal invoke {}: {}{}",
            invoke.invoke_id(),
            method_text(method),
            parameters_text(parameters)
        ),
        ActionRequest::NextPblock {
            invoke,
            block_number,
        } => format!(
            "ACTION-Request-Next-Pblock invoke {}: block {block_number}",
            invoke.invoke_id()
        ),
        ActionRequest::WithFirstPblock {
            invoke,
            method,
            block,
        } => format!(
            "ACTION-Request-With-First-Pblock invoke {}: {}, {}",
            invoke.invoke_id(),
            method_text(method),
            block_text(block)
        ),
        ActionRequest::WithPblock { invoke, block } => format!(
            "ACTION-Request-With-Pblock invoke {}: {}",
            invoke.invoke_id(),
            block_text(block)
        ),
    }
}

pub(super) fn action_response_text(a: &ActionResponse) -> String {
    match a {
        ActionResponse::Normal {
            invoke,
            result,
            return_parameters,
        } => {
            let mut t = format!(
                "ACTION-Response-Normal invoke {}: {}",
                invoke.invoke_id(),
                result_text(result)
            );
            if let Some(r) = return_parameters {
                let _ = write!(t, ", return {}", data_result_text(r));
            }
            t
        }
        ActionResponse::WithPblock { invoke, block } => format!(
            "ACTION-Response-With-Pblock invoke {}: {}",
            invoke.invoke_id(),
            block_text(block)
        ),
        ActionResponse::NextPblock {
            invoke,
            block_number,
        } => format!(
            "ACTION-Response-Next-Pblock invoke {}: block {block_number}",
            invoke.invoke_id()
        ),
    }
}
