//! TCP listeners (network load balancers): each connection is passed
//! through to a target of the default action's target group.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::balancer::ListenerCtx;
use crate::group::{Outstanding, read};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) async fn serve(ctx: Arc<ListenerCtx>, listener: Arc<TcpListener>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                tokio::spawn(flow(ctx.clone(), stream, stop.clone()));
            }
            _ = stop.changed() => return,
        }
    }
}

async fn flow(ctx: Arc<ListenerCtx>, mut client: TcpStream, mut stop: watch::Receiver<bool>) {
    let _counted = ctx.counters.connection();
    let Some(inner) = ctx.inner.upgrade() else { return };
    let config = read(&ctx.config);
    ctx.counters.request();
    let Some(group) = config.default_action.groups().next().and_then(|id| inner.group(id)) else { return };
    let Some(target) = group.pick(None) else { return };
    let hold = Outstanding::new(target.clone());
    group.counters.flow();
    let mut upstream = match tokio::time::timeout(CONNECT_TIMEOUT, inner.sockets.connect(target.addr)).await {
        Ok(Ok(s)) => s,
        _ => return, // the client sees its connection reset, as with NLB
    };
    drop(inner);
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
        _ = stop.changed() => {}
    }
    drop(hold);
}
