//! `churn.v1.MonitoringService`: outcomes in, realized performance, experiment reports and
//! the fleet's drift out.

use std::sync::Arc;

use crate::domain::now_millis;
use churn_api::v1 as pb;
use churn_api::v1::monitoring_service_server::MonitoringService;
use tonic::{Request, Response, Status};

use crate::api::{from_proto, to_proto};
use crate::domain::monitoring::drift::FleetDrift;
use crate::domain::monitoring::experiments::Experiments;
use crate::domain::monitoring::performance::Performance;

#[derive(Debug, Clone)]
pub struct MonitoringApi {
    pub performance: Arc<Performance>,
    pub experiments: Arc<Experiments>,
    pub drift: Arc<FleetDrift>,
}

#[tonic::async_trait]
impl MonitoringService for MonitoringApi {
    /// Outcomes are written to the registry: they need the write token when one is set.
    async fn record_outcomes(
        &self,
        request: Request<pb::RecordOutcomesRequest>,
    ) -> Result<Response<pb::RecordOutcomesResponse>, Status> {
        let outcomes = from_proto::outcomes(request.into_inner().outcomes)?;
        let (recorded, matched) = self.performance.record_outcomes(outcomes).await?;
        Ok(Response::new(pb::RecordOutcomesResponse {
            recorded,
            matched,
        }))
    }

    async fn realized_performance(
        &self,
        request: Request<pb::RealizedPerformanceRequest>,
    ) -> Result<Response<pb::RealizedPerformanceResponse>, Status> {
        let request = from_proto::performance_request(request.into_inner(), now_millis())?;
        let (served, cohorts) = self.performance.realized(request).await?;
        Ok(Response::new(to_proto::realized_performance(
            &served, &cohorts,
        )))
    }

    async fn experiment_report(
        &self,
        request: Request<pb::ExperimentReportRequest>,
    ) -> Result<Response<pb::ExperimentReportResponse>, Status> {
        let request = from_proto::experiment_request(request.into_inner())?;
        let report = self.experiments.report(request).await?;
        Ok(Response::new(to_proto::experiment_report(&report)))
    }

    async fn drift_report(
        &self,
        request: Request<pb::DriftReportRequest>,
    ) -> Result<Response<pb::DriftReportResponse>, Status> {
        let request = from_proto::drift_request(request.into_inner(), now_millis())?;
        let report = self.drift.report(request).await?;
        Ok(Response::new(to_proto::drift_report(&report)))
    }
}
