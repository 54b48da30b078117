"""The job core (SPEC 6.2): what every kind of job (``BackgroundJob``, ``DeliveryJob``, and each kind to come) uses,
and the REST layer of BackgroundJobs (SPEC 5.11: ``views``, ``filters``, ``serializers``)."""
