//! Tools that send notifications while they run: log messages
//! (`notifications/message`) and progress (`notifications/progress`).
//!
//! A tool reaches the client through the [`Peer`] of its request, which rmcp
//! hands to any `#[tool]` function that takes one (or a whole
//! [`RequestContext`], which also carries the session's state); the
//! request's `_meta` (with the client's `progressToken`) comes as
//! [`RequestMetaObject`].
//! Progress notifications for a token travel on the request's own response
//! stream; log messages travel on the session's stream (`GET /mcp`).
//!
//! `test_notify_resource_updated` announces a resource update to every
//! `subscriptions/listen` stream of the fleet ([`mcp_session::listen`]),
//! whichever replica holds it.
//!
//! `test_reconnection` closes its own response stream before it answers
//! (SEP-1699, [`mcp_session::response_stream`]): its result reaches the
//! client on the stream resumed with `Last-Event-ID`, from any replica.

use std::time::Duration;

use mcp_session::listen::{self, Audience};
use rmcp::{
    ErrorData, Peer, RoleServer,
    handler::server::wrapper::Parameters,
    model::{
        ProgressNotificationParam, RequestMetaObject, ResourceUpdatedNotification,
        ResourceUpdatedNotificationParam, ServerNotification,
    },
    schemars::{self, JsonSchema},
    service::RequestContext,
    tool, tool_router,
};

use serde::Deserialize;

use crate::{Everything, resources};

/// Arguments of `test_notify_resource_updated`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ResourceArgs {
    /// The URI of one of the server's resources
    pub uri: String,
}

/// The pause between two notifications, so that the client sees them arrive
/// one by one while the call is in progress.
pub const STEP_PAUSE: Duration = Duration::from_millis(50);

/// The log messages of `test_tool_with_logging`, in order.
pub const LOG_MESSAGES: [&str; 3] = [
    "Tool execution started",
    "Tool processing data",
    "Tool execution completed",
];

/// How long `test_reconnection` works after closing its stream.
pub const RECONNECTION_PAUSE: Duration = Duration::from_millis(100);

/// The progress steps of `test_tool_with_progress`, out of [`PROGRESS_TOTAL`].
pub const PROGRESS_STEPS: [f64; 3] = [0.0, 50.0, 100.0];
/// The total of `test_tool_with_progress`'s progress.
pub const PROGRESS_TOTAL: f64 = 100.0;

#[tool_router(router = notification_tools, vis = "pub(crate)")]
impl Everything {
    #[tool(
        name = "test_tool_with_logging",
        description = "Sends three info-level log notifications, 50 ms apart, while it runs (unless the session's log level is above info).",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn tool_with_logging(
        &self,
        context: RequestContext<RoleServer>,
    ) -> Result<String, String> {
        for (step, message) in LOG_MESSAGES.into_iter().enumerate() {
            if step > 0 {
                tokio::time::sleep(STEP_PAUSE).await;
            }
            self.log
                .info(&context, message)
                .await
                .map_err(|error| format!("could not send a log message: {error}"))?;
        }
        Ok("Tool with logging executed successfully".to_owned())
    }

    #[tool(
        name = "test_tool_with_progress",
        description = "Reports progress 0, 50 and 100 of 100, 50 ms apart, to the request's progressToken (if it has one).",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn tool_with_progress(
        &self,
        peer: Peer<RoleServer>,
        meta: RequestMetaObject,
    ) -> Result<String, String> {
        let token = meta.get_progress_token();
        for (step, progress) in PROGRESS_STEPS.into_iter().enumerate() {
            if step > 0 {
                tokio::time::sleep(STEP_PAUSE).await;
            }
            let Some(token) = &token else { continue };
            let notification = ProgressNotificationParam::new(token.clone(), progress)
                .with_total(PROGRESS_TOTAL)
                .with_message(format!("Completed step {progress} of {PROGRESS_TOTAL}"));
            peer.notify_progress(notification)
                .await
                .map_err(|error| format!("could not send a progress notification: {error}"))?;
        }
        Ok(match token {
            Some(token) => format!("Progress reported to token {}", token.0),
            None => "No progressToken in the request: progress was not reported".to_owned(),
        })
    }

    #[tool(
        name = "test_reconnection",
        description = "Closes its own SSE response stream after the priming event, then answers 100 ms later: the answer arrives when the client resumes the stream (GET with Last-Event-ID), on any replica.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn reconnection(&self, context: RequestContext<RoleServer>) -> String {
        let closed = mcp_session::response_stream::close(&context);
        tokio::time::sleep(RECONNECTION_PAUSE).await;
        if closed {
            "Reconnection test completed successfully. If you received this, the client properly reconnected after stream closure.".to_owned()
        } else {
            "Reconnection test completed without closing a stream: this request has no SSE stream to close.".to_owned()
        }
    }

    #[tool(
        name = "test_notify_resource_updated",
        description = "Announces that the resource at `uri` was updated: every subscriptions/listen stream that names it, on every replica, gets notifications/resources/updated once.",
        annotations(read_only_hint = false, open_world_hint = false)
    )]
    async fn notify_resource_updated(
        &self,
        context: RequestContext<RoleServer>,
        Parameters(ResourceArgs { uri }): Parameters<ResourceArgs>,
    ) -> Result<String, ErrorData> {
        if !resources::exists(&uri) {
            return Err(ErrorData::resource_not_found(
                format!("no resource has the URI `{uri}`"),
                None,
            ));
        }
        let notification = ServerNotification::ResourceUpdatedNotification(
            ResourceUpdatedNotification::new(ResourceUpdatedNotificationParam::new(uri.clone())),
        );
        listen::publish(&context, Audience::Everyone, notification).await?;
        Ok(format!("Announced an update of {uri} to its listeners"))
    }
}
