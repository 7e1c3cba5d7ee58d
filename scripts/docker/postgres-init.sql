-- Databases of the services in docker-compose.yml (run once, on an empty volume).
CREATE DATABASE ckan;
